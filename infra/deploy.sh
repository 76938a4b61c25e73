#!/usr/bin/env bash
# Deploys the model registry to Azure: resource group, infrastructure (main.bicep), the code, then a
# smoke check.
#
#   infra/deploy.sh -s SUBSCRIPTION -g RESOURCE_GROUP -c ENTRA_CLIENT_ID [-l LOCATION] [options]
#
# Options may also come from the environment (names in brackets below). Run with the same options
# every time: a deployment sets every app setting and parameter, so an option left out is reset.
# --what-if shows what the infrastructure deployment would change and applies nothing.
# Rollback: --code-only --package dist/registry-<version>.zip deploys an earlier package again.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# Older versions loop forever on the Flex Consumption health check after config-zip
# (Azure/azure-cli#31394, fixed in 2.87.0, 2026-06-02).
min_az_version=2.87.0

subscription=${AZURE_SUBSCRIPTION_ID:-}
resource_group=${AZURE_RESOURCE_GROUP:-}
location=${AZURE_LOCATION:-}
name_prefix=${REGISTRY_NAME_PREFIX:-registry}
client_id=${REGISTRY_ENTRA_CLIENT_ID:-}
bulk_owners=${REGISTRY_BULK_OWNERS:-}
allowed_source_hosts=${REGISTRY_ALLOWED_SOURCE_HOSTS:-*.blob.core.windows.net}
alert_email=${REGISTRY_ALERT_EMAIL:-}
storage_sku=${REGISTRY_STORAGE_SKU:-Standard_GRS}
max_instances=${REGISTRY_MAX_INSTANCES:-40}
http_concurrency=${REGISTRY_HTTP_CONCURRENCY:-16}
always_ready=${REGISTRY_HTTP_ALWAYS_READY:-0}
private_network=${REGISTRY_PRIVATE_NETWORK:-false}
protect=${REGISTRY_PROTECT_FROM_DELETION:-true}
deploy_timeout=${REGISTRY_DEPLOY_TIMEOUT:-900}
live_test_queue=false
package=
what_if=false
infra=true
code=true
smoke=true
rotation=keep

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  -s, --subscription ID         subscription id or name (required)         [AZURE_SUBSCRIPTION_ID]
  -g, --resource-group NAME     resource group (created if missing)        [AZURE_RESOURCE_GROUP]
  -l, --location REGION         region, e.g. swedencentral (new groups)    [AZURE_LOCATION]
  -p, --name-prefix PREFIX      2-10 lowercase letters/digits (registry)   [REGISTRY_NAME_PREFIX]
  -c, --client-id GUID          Entra app registration for Easy Auth       [REGISTRY_ENTRA_CLIENT_ID]
      --bulk-owners IDS         principal ids allowed to enqueue (comma)   [REGISTRY_BULK_OWNERS]
      --allowed-source-hosts H  hosts models may be copied from (comma)    [REGISTRY_ALLOWED_SOURCE_HOSTS]
      --alert-email ADDRESS     where alerts are e-mailed                  [REGISTRY_ALERT_EMAIL]
      --storage-sku SKU         Standard_GRS (default), _LRS, _ZRS, ...    [REGISTRY_STORAGE_SKU]
      --max-instances N         Flex scale-out limit, 40-1000 (40)         [REGISTRY_MAX_INSTANCES]
      --http-concurrency N      HTTP requests per instance (16)            [REGISTRY_HTTP_CONCURRENCY]
      --always-ready N          always-ready HTTP instances (0)            [REGISTRY_HTTP_ALWAYS_READY]
      --private-network         VNet integration + private endpoints       [REGISTRY_PRIVATE_NETWORK=true]
      --no-locks                no CanNotDelete locks                      [REGISTRY_PROTECT_FROM_DELETION=false]
      --live-test-queue         also create the queue the live Service Bus tests use
      --package ZIP             deploy this package instead of building one (rollback)
      --infra-only              deploy the infrastructure only (no code, no smoke check)
      --code-only               deploy the code (and smoke check) only
      --smoke-only              only run the smoke check against the deployed app
      --deploy-timeout SECONDS  limit for one code deployment attempt (900) [REGISTRY_DEPLOY_TIMEOUT]
      --what-if                 show the infrastructure changes, apply nothing
  -h, --help
USAGE
}

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
  -s | --subscription) subscription=${2:?$1 needs a value}; shift 2 ;;
  -g | --resource-group) resource_group=${2:?$1 needs a value}; shift 2 ;;
  -l | --location) location=${2:?$1 needs a value}; shift 2 ;;
  -p | --name-prefix) name_prefix=${2:?$1 needs a value}; shift 2 ;;
  -c | --client-id) client_id=${2:?$1 needs a value}; shift 2 ;;
  --bulk-owners) bulk_owners=${2?$1 needs a value}; shift 2 ;;
  --allowed-source-hosts) allowed_source_hosts=${2:?$1 needs a value}; shift 2 ;;
  --alert-email) alert_email=${2?$1 needs a value}; shift 2 ;;
  --storage-sku) storage_sku=${2:?$1 needs a value}; shift 2 ;;
  --max-instances) max_instances=${2:?$1 needs a value}; shift 2 ;;
  --http-concurrency) http_concurrency=${2:?$1 needs a value}; shift 2 ;;
  --always-ready) always_ready=${2:?$1 needs a value}; shift 2 ;;
  --private-network) private_network=true; shift ;;
  --no-locks) protect=false; shift ;;
  --live-test-queue) live_test_queue=true; shift ;;
  --package) package=${2:?$1 needs a value}; shift 2 ;;
  --infra-only) code=false; smoke=false; shift ;;
  --code-only) infra=false; shift ;;
  --smoke-only) infra=false; code=false; shift ;;
  --deploy-timeout) deploy_timeout=${2:?$1 needs a value}; shift 2 ;;
  --what-if) what_if=true; shift ;;
  # Used by rotate-sealing-key.sh: begin-rotation or finish-rotation.
  --sealing-key-rotation) rotation=${2:?$1 needs a value}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown option: $1" ;;
  esac
done

# --- prerequisites -------------------------------------------------------------------------------
for tool in az python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
[[ -n "$subscription" ]] || die "give the subscription explicitly: -s ID (or AZURE_SUBSCRIPTION_ID)"
[[ -n "$resource_group" ]] || die "give the resource group: -g NAME (or AZURE_RESOURCE_GROUP)"
[[ "$client_id" =~ ^[0-9a-fA-F-]{36}$ ]] ||
  die "give the Entra app registration's client id: -c GUID (or REGISTRY_ENTRA_CLIENT_ID)"
[[ "$name_prefix" =~ ^[a-z][a-z0-9]{1,9}$ ]] || die "name prefix: 2-10 lowercase letters and digits"
[[ "$deploy_timeout" =~ ^[0-9]+$ ]] || die "--deploy-timeout: a number of seconds"
[[ "$rotation" =~ ^(keep|begin-rotation|finish-rotation)$ ]] || die "unknown sealing key rotation: $rotation"
[[ -z "$package" || -f "$package" ]] || die "no such package: $package"

az_version=$(az version --query '"azure-cli"' --output tsv 2>/dev/null) ||
  die "cannot run az version: is the Azure CLI installed?"
if [[ "$(printf '%s\n%s\n' "$min_az_version" "$az_version" | sort -V | head -n1)" != "$min_az_version" ]]; then
  die "Azure CLI $az_version is too old: $min_az_version or newer is needed (older versions can hang on the
  Flex Consumption health check after a code deployment). Update with: az upgrade"
fi
account=$(az account show --subscription "$subscription" --query name --output tsv 2>&1) ||
  die "az cannot use subscription $subscription: $account
  (not logged in? run az login; azd auth login does not log az in)"
echo "Subscription: $account ($subscription), Azure CLI $az_version"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"

# --- infrastructure ------------------------------------------------------------------------------
if $infra; then
  group_check=$(az group show --name "$resource_group" --subscription "$subscription" --output none 2>&1) &&
    group_exists=true || group_rc=$?
  if [[ "${group_exists:-false}" != true ]]; then
    # Only "not found" (exit 3) means absent; any other failure stops here.
    [[ "${group_rc:-1}" == 3 ]] || die "cannot read resource group $resource_group: $group_check"
    [[ -n "$location" ]] || die "resource group $resource_group does not exist: give -l LOCATION to create it"
    if $what_if; then
      echo "What-if: resource group $resource_group does not exist; a deployment would create it in"
      echo "$location with every resource of infra/main.bicep. Nothing was changed."
      exit 0
    fi
    az group create --name "$resource_group" --location "$location" --subscription "$subscription" --output none
    echo "Created resource group $resource_group in $location"
  fi

  # The sealing key: a new one only when the group has none, else the versions the app pins.
  # sealing_key.py fails closed (no file, non-zero exit) whenever Azure cannot be read.
  python3 "$here/sealing_key.py" --subscription "$subscription" --resource-group "$resource_group" \
    --name-prefix "$name_prefix" --mode "$rotation" --out "$workdir/sealing.parameters.json"

  parameters=(
    "@$workdir/sealing.parameters.json"
    "namePrefix=$name_prefix"
    "entraClientId=$client_id"
    "bulkOwners=$bulk_owners"
    "allowedSourceHosts=$allowed_source_hosts"
    "alertEmail=$alert_email"
    "storageSku=$storage_sku"
    "maximumInstanceCount=$max_instances"
    "httpPerInstanceConcurrency=$http_concurrency"
    "httpAlwaysReadyInstances=$always_ready"
    "privateNetworking=$private_network"
    "protectFromDeletion=$protect"
    "createLiveTestQueue=$live_test_queue"
  )
  [[ -n "$location" ]] && parameters+=("location=$location")

  if $what_if; then
    # ProviderNoRbac: full validation without requiring write access, so a read-only pipeline
    # identity can preview (az 2.76.0 or newer).
    az deployment group what-if --resource-group "$resource_group" --subscription "$subscription" \
      --name registry --template-file "$here/main.bicep" --parameters "${parameters[@]}" \
      --validation-level ProviderNoRbac
    exit 0
  fi
  az deployment group create --resource-group "$resource_group" --subscription "$subscription" \
    --name registry --template-file "$here/main.bicep" --parameters "${parameters[@]}" --output none
  echo "Infrastructure deployed."
elif $what_if; then
  die "--what-if previews the infrastructure: it cannot go with --code-only or --smoke-only"
fi

# The app is found by name, so that code-only and smoke-only runs work after azd deployments too.
host=$(python3 "$here/azure_state.py" app-host --subscription "$subscription" \
  --resource-group "$resource_group" --name-prefix "$name_prefix")
app=${host%%.*}
api="https://$host/api/v1.0"

# --- code ----------------------------------------------------------------------------------------
if $code; then
  if [[ -z "$package" ]]; then
    # Versioned builds stay in dist/ (git-ignored): deploy one again to roll back.
    version=$(git -C "$root" describe --always --dirty --abbrev=12 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$root/dist"
    package="$root/dist/registry-$version.zip"
    python3 "$here/package.py" --root "$root" --out "$package"
  fi
  echo "Deploying $package to $app (remote build: pip install -r requirements.txt)"
  # New role assignments (the app's identity writing its deployment container) take minutes to
  # apply, so a failed attempt is retried; each attempt is bounded by --deploy-timeout.
  attempts=3
  for attempt in $(seq "$attempts"); do
    rc=0
    timeout --kill-after=30 "$deploy_timeout" az functionapp deployment source config-zip \
      --resource-group "$resource_group" --subscription "$subscription" --name "$app" \
      --src "$package" --build-remote true --output none || rc=$?
    [[ $rc -eq 0 ]] && break
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
      die "the code deployment did not finish within $deploy_timeout s and was stopped. The app may be
  failing to start: check \`az functionapp log deployment show -g $resource_group -n $app\` and
  Application Insights, then run again with --code-only (raise --deploy-timeout for slow builds)."
    fi
    [[ $attempt -lt $attempts ]] ||
      die "the code deployment failed $attempts times (exit $rc): see the az output above; if it is a 403
  from storage, the app identity's role assignment is still propagating: run again with --code-only."
    echo "Deployment attempt $attempt failed (exit $rc; new role assignments take a few minutes); retrying in 60 s" >&2
    sleep 60
  done
  echo "Code deployed: $package"
fi

# --- smoke check ---------------------------------------------------------------------------------
if $smoke; then
  # A user asks for the API's delegated scope (the Azure CLI is pre-authorized for it, see README);
  # a service principal (the pipeline) gets an app-only token with .default.
  account_type=$(az account show --subscription "$subscription" --query user.type --output tsv)
  tenant=$(az account show --subscription "$subscription" --query tenantId --output tsv)
  scope="api://$client_id/user_impersonation"
  [[ "$account_type" == servicePrincipal ]] && scope="api://$client_id/.default"
  token=$(az account get-access-token --tenant "$tenant" --scope "$scope" --query accessToken --output tsv) ||
    die "could not get a token for $scope: see README, Prerequisites (the app registration's API scope)"
  REGISTRY_SMOKE_TOKEN="$token" python3 "$here/smoke.py" --api "$api" ||
    die "the smoke check failed (above: what failed and what to check). Roll back the code with
  infra/deploy.sh <same options> --code-only --package dist/registry-<previous>.zip"
  unset token
  echo "Smoke check passed."
fi

echo
echo "API base URL: $api"
