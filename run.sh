#!/usr/bin/env bash
# qsec set-up and entry point.
#   ./run.sh up      set up (once) and run the whole pipeline with simulated kits and the live dashboard
#   ./run.sh test    set up (once) and run the whole test suite
#   ./run.sh setup   only set up
# Anything after the word is passed on: ./run.sh up --kits 5 --port 8080
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.qsec-setup-stamp"

need_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY=$(command -v "$py"); return 0
    fi
  done
  echo "qsec needs Python 3.11 or newer. On Debian/Ubuntu: sudo apt-get install python3 python3-venv" >&2
  exit 1
}

system_packages() {
  # Debian packages qsec runs against: the Mosquitto broker; for the tests also Chromium and VictoriaMetrics.
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  if [ "${1:-}" = test ]; then
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/victoria-metrics ] || missing+=(victoria-metrics)  # an InfluxDB-compatible server for the mirror's tests
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "qsec needs these system packages: ${missing[*]}" >&2
    echo "Install them, then run this again:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

python_env() {
  local want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then return 0; fi
  echo "==> creating the virtual environment in .venv and installing qsec"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e ".[test]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "installing qsec failed; the whole log is in $log" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
}

cmd=${1:-up}; shift || true
need_python
case "$cmd" in
  up)    system_packages up;   python_env; exec "$VENV/bin/qsec" up "$@" ;;
  test)  system_packages test; python_env; exec "$VENV/bin/python" -m pytest "$@" ;;
  setup) system_packages test; python_env; echo "set up: activate with  source .venv/bin/activate" ;;
  *) echo "usage: ./run.sh up|test|setup [args...]" >&2; exit 2 ;;
esac
