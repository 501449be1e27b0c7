#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: system packages, virtual environment, package.
# Sourced, not run. Idempotent: a second run on a ready machine takes a second or two.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT}"

# Debian packages the project needs: the apt name, then the command that proves it is there.
need_apt_packages() {
  local missing=() pkg cmd
  while [ $# -gt 1 ]; do
    pkg="$1"; cmd="$2"; shift 2
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

find_python() {
  local candidate
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python >= 3.11 is required; install it (Debian: apt-get install python3)." >&2
  return 1
}

# Create .venv and install the package with its dev extras; reinstall when pyproject.toml changes.
install_project() {
  local stamp="$VENV/.helios-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$(find_python)" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing helios_pipeline and its dependencies (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# The PostgreSQL server the Dagster-on-PostgreSQL test uses (127.0.0.1:5432, trust auth for the
# postgres user, as Debian's package sets it up locally): started when installed but not running.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  need_apt_packages postgresql pg_ctlcluster
  echo "==> starting PostgreSQL"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo service postgresql start >/dev/null 2>&1 || $sudo pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 1
  done
  echo "PostgreSQL did not start on 127.0.0.1:5432; start it (service postgresql start) and re-run." >&2
  return 1
}

# The RabbitMQ broker the Celery executor test uses (127.0.0.1:5672, Debian's guest/guest, which
# only local clients may use): started when installed but not running.
ensure_rabbitmq() {
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then return 0; fi
  need_apt_packages rabbitmq-server rabbitmq-server
  echo "==> starting RabbitMQ"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo service rabbitmq-server start >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && return 0
    sleep 1
  done
  echo "RabbitMQ did not start on 127.0.0.1:5672; start it (service rabbitmq-server start) and re-run." >&2
  return 1
}
