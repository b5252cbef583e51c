#!/usr/bin/env bash
# Installs what Sandgate needs on a Debian/Ubuntu machine, then the Python and
# Node dependencies. Safe to run again: each step checks before it acts.
# Used by `make run`, `make test` and `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: bubblewrap isolates sandboxes; libseccomp2 builds their
# syscall filters (the service refuses to start without it); setpriv, nsenter
# and unshare (util-linux) and mount drop privileges, configure namespaces and
# set up the sandboxd zygote's mount namespace; slirp4netns and nft
# give networked templates filtered egress; chromium is the browser template's
# browser; Debian's python3 builds the venv because the sandbox must be able to
# read the interpreter (a pyenv under /root is not readable by the unprivileged
# sandbox uid); node/npm provide buf for proto lint; redis-server backs the agent
# service's Redis backends and Celery tasks in the tests (and in production).
need_pkgs=()
command -v bwrap >/dev/null || need_pkgs+=(bubblewrap)
# No grep -q: it stops reading at the first match, ldconfig then dies of SIGPIPE
# and pipefail now and then took the package for missing (and reinstalled it).
/sbin/ldconfig -p 2>/dev/null | grep 'libseccomp\.so\.2 ' >/dev/null || need_pkgs+=(libseccomp2)
command -v setpriv >/dev/null && command -v nsenter >/dev/null \
  && command -v unshare >/dev/null || need_pkgs+=(util-linux)
command -v mount >/dev/null || need_pkgs+=(mount)
command -v slirp4netns >/dev/null || need_pkgs+=(slirp4netns)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need_pkgs+=(nftables)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium fonts-dejavu-core)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
[ -f /usr/include/python3.11/Python.h ] || [ -n "$(ls /usr/include/python3*/Python.h 2>/dev/null)" ] || need_pkgs+=(python3-dev)
command -v npm >/dev/null || need_pkgs+=(nodejs npm)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "Sandgate needs these Debian packages. Run:" >&2
    echo "  sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
fi

stamp=.venv/.sandgate-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> creating .venv (Debian python3) and installing Python dependencies"
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

nstamp=node_modules/.sandgate-installed
if [ ! -f "$nstamp" ] || [ package.json -nt "$nstamp" ]; then
  echo "==> installing Node dev tools (buf)"
  npm install --no-audit --no-fund --silent
  touch "$nstamp"
fi
