#!/usr/bin/env bash
# Deploys the model registry to Azure: resource group, infrastructure (main.bicep), then the code.
#
#   infra/deploy.sh -g RESOURCE_GROUP -c ENTRA_CLIENT_ID [-l LOCATION] [-p NAME_PREFIX] [--what-if]
#
# Options may also come from the environment: AZURE_RESOURCE_GROUP, AZURE_LOCATION,
# REGISTRY_NAME_PREFIX, REGISTRY_ENTRA_CLIENT_ID, REGISTRY_BULK_OWNERS, REGISTRY_ALLOWED_SOURCE_HOSTS.
# --what-if shows what the deployment would change and applies nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

resource_group=${AZURE_RESOURCE_GROUP:-}
location=${AZURE_LOCATION:-}
name_prefix=${REGISTRY_NAME_PREFIX:-registry}
client_id=${REGISTRY_ENTRA_CLIENT_ID:-}
bulk_owners=${REGISTRY_BULK_OWNERS:-}
allowed_source_hosts=${REGISTRY_ALLOWED_SOURCE_HOSTS:-*.blob.core.windows.net}
what_if=false
live_test_queue=false

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  -g, --resource-group NAME     resource group (created if missing)        [AZURE_RESOURCE_GROUP]
  -l, --location REGION         region, e.g. swedencentral (new groups)    [AZURE_LOCATION]
  -p, --name-prefix PREFIX      2-10 lowercase letters/digits (registry)   [REGISTRY_NAME_PREFIX]
  -c, --client-id GUID          Entra app registration for Easy Auth       [REGISTRY_ENTRA_CLIENT_ID]
      --bulk-owners IDS         principal ids allowed to enqueue (comma)   [REGISTRY_BULK_OWNERS]
      --allowed-source-hosts H  hosts models may be copied from (comma)    [REGISTRY_ALLOWED_SOURCE_HOSTS]
      --live-test-queue         also create the queue the live Service Bus tests use
      --what-if                 show the changes, apply nothing
  -h, --help
USAGE
}

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
  -g | --resource-group) resource_group=${2:?$1 needs a value}; shift 2 ;;
  -l | --location) location=${2:?$1 needs a value}; shift 2 ;;
  -p | --name-prefix) name_prefix=${2:?$1 needs a value}; shift 2 ;;
  -c | --client-id) client_id=${2:?$1 needs a value}; shift 2 ;;
  --bulk-owners) bulk_owners=${2?$1 needs a value}; shift 2 ;;
  --allowed-source-hosts) allowed_source_hosts=${2:?$1 needs a value}; shift 2 ;;
  --live-test-queue) live_test_queue=true; shift ;;
  --what-if) what_if=true; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown option: $1" ;;
  esac
done

# --- prerequisites -------------------------------------------------------------------------------
for tool in az python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
[[ -n "$resource_group" ]] || die "give the resource group: -g NAME (or AZURE_RESOURCE_GROUP)"
[[ "$client_id" =~ ^[0-9a-fA-F-]{36}$ ]] ||
  die "give the Entra app registration's client id: -c GUID (or REGISTRY_ENTRA_CLIENT_ID)"
[[ "$name_prefix" =~ ^[a-z][a-z0-9]{1,9}$ ]] || die "name prefix: 2-10 lowercase letters and digits"
az account show --query id --output tsv >/dev/null 2>&1 || die "not logged in: run az login"
subscription=$(az account show --query name --output tsv)
echo "Subscription: $subscription"

# --- resource group --------------------------------------------------------------------------------
if [[ "$(az group exists --name "$resource_group")" != "true" ]]; then
  [[ -n "$location" ]] || die "resource group $resource_group does not exist: give -l LOCATION to create it"
  if $what_if; then
    echo "What-if: resource group $resource_group does not exist; a deployment would create it in"
    echo "$location with every resource of infra/main.bicep. Nothing was changed."
    exit 0
  fi
  az group create --name "$resource_group" --location "$location" --output none
  echo "Created resource group $resource_group in $location"
fi

# --- sealing key: generated once, passed as a secure parameter through a private file --------------
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"
sealing_key=$("$here/scripts/sealing-key.sh" "$resource_group")
if [[ -n "$sealing_key" ]]; then
  echo "No sealing key in the resource group yet: a new one will be stored in its Key Vault."
else
  echo "Keeping the existing sealing key."
fi
python3 - "$workdir/secure.parameters.json" "$sealing_key" <<'PY'
import json, os, sys
path, key = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
               "contentVersion": "1.0.0.0", "parameters": {"sealingKey": {"value": key}}}, f)
PY
unset sealing_key

parameters=(
  "@$workdir/secure.parameters.json"
  "namePrefix=$name_prefix"
  "entraClientId=$client_id"
  "bulkOwners=$bulk_owners"
  "allowedSourceHosts=$allowed_source_hosts"
  "createLiveTestQueue=$live_test_queue"
)
[[ -n "$location" ]] && parameters+=("location=$location")

# --- infrastructure --------------------------------------------------------------------------------
if $what_if; then
  az deployment group what-if --resource-group "$resource_group" --name registry \
    --template-file "$here/main.bicep" --parameters "${parameters[@]}"
  exit 0
fi
az deployment group create --resource-group "$resource_group" --name registry \
  --template-file "$here/main.bicep" --parameters "${parameters[@]}" --output none
output() {
  az deployment group show --resource-group "$resource_group" --name registry \
    --query "properties.outputs.$1.value" --output tsv
}
app=$(output functionAppName)
api=$(output apiBaseUrl)
echo "Infrastructure deployed: function app $app"

# --- code: what .funcignore lets through, built remotely (pip install -r requirements.txt) ---------
python3 "$here/package.py" --root "$root" --out "$workdir/app.zip"
# The app's identity writes the package to its deployment container: a role assignment made a
# minute ago may not be in effect yet, so retry for a while.
for attempt in 1 2 3 4 5; do
  if az functionapp deployment source config-zip --resource-group "$resource_group" --name "$app" \
    --src "$workdir/app.zip" --build-remote true --output none; then
    break
  fi
  [[ $attempt -lt 5 ]] || die "code deployment failed"
  echo "Deployment attempt $attempt failed (new role assignments take a few minutes); retrying in 60 s" >&2
  sleep 60
done

echo
echo "API base URL: $api"
