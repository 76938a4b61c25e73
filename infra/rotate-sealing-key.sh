#!/usr/bin/env bash
# Rotates the registry's sealing key, the only way it ever changes. Three steps, each run on purpose:
#
#   infra/rotate-sealing-key.sh begin  <deploy.sh options>
#       A new key becomes a new version of the Key Vault secret and the current key
#       (REGISTRY_SEALING_KEY, pinned to it); the old version stays readable as
#       REGISTRY_SEALING_PREVIOUS_KEYS. New data is sealed with the new key; old data still opens.
#   infra/rotate-sealing-key.sh reseal -s SUBSCRIPTION -g RESOURCE_GROUP [-p PREFIX]
#       Runs `python -m registry reseal` with the app's settings: everything sealed under the old
#       key is sealed again under the new one (see infra/reseal.py for the access it needs).
#   infra/rotate-sealing-key.sh finish <deploy.sh options> --confirm-resealed
#       Drops the previous key from the app settings (its secret version stays in the vault, as
#       every version does, until someone disables it).
#
# <deploy.sh options> are the ones you deploy with (the deployment sets every setting again);
# begin and finish deploy the infrastructure only. Routine deployments in between keep both keys.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() {
  echo "rotate-sealing-key.sh: $*" >&2
  exit 1
}

step=${1:-}
[[ $# -gt 0 ]] && shift
case "$step" in
begin)
  exec "$here/deploy.sh" "$@" --infra-only --sealing-key-rotation begin-rotation
  ;;
reseal)
  subscription=${AZURE_SUBSCRIPTION_ID:-}
  resource_group=${AZURE_RESOURCE_GROUP:-}
  name_prefix=${REGISTRY_NAME_PREFIX:-registry}
  while [[ $# -gt 0 ]]; do
    case "$1" in
    -s | --subscription) subscription=${2:?$1 needs a value}; shift 2 ;;
    -g | --resource-group) resource_group=${2:?$1 needs a value}; shift 2 ;;
    -p | --name-prefix) name_prefix=${2:?$1 needs a value}; shift 2 ;;
    *) die "reseal takes -s, -g and -p only, not $1" ;;
    esac
  done
  [[ -n "$subscription" && -n "$resource_group" ]] || die "reseal needs -s SUBSCRIPTION and -g RESOURCE_GROUP"
  exec python3 "$here/reseal.py" --subscription "$subscription" --resource-group "$resource_group" \
    --name-prefix "$name_prefix"
  ;;
finish)
  confirmed=false
  options=()
  for option in "$@"; do
    if [[ "$option" == --confirm-resealed ]]; then confirmed=true; else options+=("$option"); fi
  done
  $confirmed || die "finish drops the previous key: data not yet resealed would become unreadable.
  Run the reseal step first, then finish with --confirm-resealed."
  exec "$here/deploy.sh" "${options[@]}" --infra-only --sealing-key-rotation finish-rotation
  ;;
-h | --help)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  die "say which step: begin, reseal or finish"
  ;;
esac
