#!/usr/bin/env bash
# azd postprovision hook: the new sealing key (if any) is in Key Vault now; remove it from the azd
# environment (.azure/<env>/.env) so that it is kept nowhere else.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=infra/scripts/azd-env.sh
. "$here/azd-env.sh"
azd_env_clear REGISTRY_NEW_SEALING_KEY
