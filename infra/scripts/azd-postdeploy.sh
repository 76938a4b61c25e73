#!/usr/bin/env bash
# azd postdeploy hook: the same smoke check as infra/deploy.sh (anonymous 401, OpenAPI with a token).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../deploy.sh" --smoke-only --subscription "${AZURE_SUBSCRIPTION_ID:?}" \
  --resource-group "${AZURE_RESOURCE_GROUP:?}" --client-id "${REGISTRY_ENTRA_CLIENT_ID:?}" \
  --name-prefix "${REGISTRY_NAME_PREFIX:-registry}"
