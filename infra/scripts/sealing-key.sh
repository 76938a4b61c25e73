#!/usr/bin/env bash
# Prints a new sealing key (32 random bytes, base64) when the resource group has no sealing key
# secret yet, and nothing when it has one: the key is written once and never rotated by a deployment.
# Looks through the control plane (the vault tagged registry-role=sealing-key, then its secret's
# metadata), so it needs only Reader on the resource group, not data access to the vault.
#   usage: sealing-key.sh RESOURCE_GROUP
set -euo pipefail

resource_group=${1:?usage: sealing-key.sh RESOURCE_GROUP}
secret_name=registry-sealing-key

if [[ "$(az group exists --name "$resource_group")" == "true" ]]; then
  vault_id=$(az keyvault list --resource-group "$resource_group" \
    --query "[?tags.\"registry-role\"=='sealing-key'].id | [0]" --output tsv)
  if [[ -n "$vault_id" ]] &&
    az resource show --ids "$vault_id/secrets/$secret_name" --query id --output tsv >/dev/null 2>&1; then
    exit 0
  fi
fi
openssl rand -base64 32
