# Helpers for the azd hooks (sourced). azd keeps an environment's values in .azure/<env>/.env.

# azd_param FILE NAME: a value from an ARM parameters file.
azd_param() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parameters"][sys.argv[2]]["value"])' "$1" "$2"
}

# azd_env_put NAME VALUE: set a value; an empty value clears it.
azd_env_put() {
  if [[ -n "$2" ]]; then
    azd env set "$1" "$2"
  else
    azd_env_clear "$1"
  fi
}

# azd_env_clear NAME: remove a value from the azd environment, and from its .env file should azd
# keep an empty entry there.
azd_env_clear() {
  azd env set "$1" "" >/dev/null 2>&1 || true
  local file=".azure/${AZURE_ENV_NAME:?azd sets AZURE_ENV_NAME for hooks}/.env"
  if [[ -f "$file" ]]; then
    python3 - "$file" "$1" <<'PY'
import os, sys
path, name = sys.argv[1], sys.argv[2]
with open(path) as f:
    lines = f.readlines()
kept = [line for line in lines if not line.startswith(f"{name}=")]
if kept != lines:
    with open(path + ".tmp", "w") as f:
        f.writelines(kept)
    os.chmod(path + ".tmp", os.stat(path).st_mode & 0o777)
    os.replace(path + ".tmp", path)
PY
  fi
}
