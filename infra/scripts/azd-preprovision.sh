#!/usr/bin/env bash
# azd preprovision hook: decides the sealing key parameters (infra/sealing_key.py, which fails
# closed) and hands them to main.parameters.json through the azd environment. A new key is stored
# there only when one is needed (first deployment), and azd-postprovision.sh removes it again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=infra/scripts/azd-env.sh
. "$here/azd-env.sh"
: "${AZURE_SUBSCRIPTION_ID:?set the subscription: azd env set AZURE_SUBSCRIPTION_ID <id>}"
: "${AZURE_RESOURCE_GROUP:?set the resource group: azd env set AZURE_RESOURCE_GROUP <name>}"
: "${REGISTRY_ENTRA_CLIENT_ID:?set the Entra app registration: azd env set REGISTRY_ENTRA_CLIENT_ID <client id>}"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"
# A key left by a failed earlier run must not be reused.
azd_env_clear REGISTRY_NEW_SEALING_KEY
python3 "$here/../sealing_key.py" --subscription "$AZURE_SUBSCRIPTION_ID" \
  --resource-group "$AZURE_RESOURCE_GROUP" --name-prefix "${REGISTRY_NAME_PREFIX:-registry}" \
  --out "$workdir/sealing.json"

version=$(azd_param "$workdir/sealing.json" sealingKeyVersion)
previous=$(azd_param "$workdir/sealing.json" previousSealingKeyVersion)
new_key=$(azd_param "$workdir/sealing.json" sealingKey)
azd_env_put REGISTRY_SEALING_KEY_VERSION "$version"
azd_env_put REGISTRY_SEALING_PREVIOUS_KEY_VERSION "$previous"
if [[ -n "$new_key" ]]; then
  azd env set REGISTRY_NEW_SEALING_KEY "$new_key"
fi
unset new_key
