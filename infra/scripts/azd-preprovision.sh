#!/usr/bin/env bash
# azd preprovision hook: hands main.bicep a new sealing key only when none exists yet (see
# sealing-key.sh), through the azd environment value REGISTRY_NEW_SEALING_KEY.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${AZURE_RESOURCE_GROUP:?set the resource group: azd env set AZURE_RESOURCE_GROUP <name>}"
: "${REGISTRY_ENTRA_CLIENT_ID:?set the Entra app registration: azd env set REGISTRY_ENTRA_CLIENT_ID <client id>}"
azd env set REGISTRY_NEW_SEALING_KEY "$("$here/sealing-key.sh" "$AZURE_RESOURCE_GROUP")"
