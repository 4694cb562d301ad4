#!/usr/bin/env bash
# Make sure the services the tests need are there: the local PostgreSQL server.
# Starts it if it is installed but stopped; otherwise says why the tests cannot run.
set -euo pipefail

pg_host=127.0.0.1
pg_port=5432

if ! pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "PostgreSQL is not running; starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do
      pg_isready -q -h "$pg_host" -p "$pg_port" && break
      sleep 1
    done
  fi
fi
if ! pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; then
  echo "error: no PostgreSQL server on $pg_host:$pg_port and none could be started here;" >&2
  echo "       the database tests run on SQLite and PostgreSQL and need both" >&2
  exit 1
fi

# Installs Debian packages when missing, from the distribution's mirror only; returns
# non-zero when they cannot be installed here (no root, no apt-get, no mirror).
apt_install() {
  command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends "$@"; }
}

# The browser tests (tests/browser, marker `browser`) drive Debian's own Chromium in
# headless mode; it comes from the distribution's packages, never from a test tool's
# download (`playwright install` is not used).
if [ ! -x /usr/bin/chromium ]; then
  echo "Chromium is missing; installing Debian's chromium package for the browser tests"
  if ! apt_install chromium; then
    echo "error: /usr/bin/chromium is missing and could not be installed (apt-get install -y" >&2
    echo "       --no-install-recommends chromium needs root and a Debian mirror);" >&2
    echo "       the browser tests in tests/browser need it" >&2
    exit 1
  fi
fi

# The researcher's tools (tests/research_api/test_researcher_guide.py): Debian's `age`
# (age and age-keygen), to open a real release as a researcher would. Without it those
# tests are skipped with the reason; installing it needs no other service.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  echo "age is missing; installing Debian's age package for the researcher tests"
  if ! apt_install age; then
    echo "warning: age could not be installed here (apt-get install -y age as root);" >&2
    echo "         the researcher guide tests will skip" >&2
  fi
fi

# The load generator of the HTTP benchmark (bench/http.py): Debian's `wrk`. The tests do
# not need it; the benchmarks say so and stop when it is missing.
if ! command -v wrk >/dev/null; then
  echo "wrk is missing; installing Debian's wrk package for bench/http.py"
  if ! apt_install wrk; then
    echo "warning: wrk could not be installed here (apt-get install -y wrk as root);" >&2
    echo "         bench/http.py will say so and stop" >&2
  fi
fi

# The identity-provider tests (tests/oidc, and the browser's sign-in) run a real OpenID
# Provider, the npm package oidc-provider pinned in tests/oidc/package-lock.json, under
# Node.js. Installed here when node_modules is missing or older than the lock file.
oidc_dir="$(dirname "$0")/../tests/oidc"
if [ ! -d "$oidc_dir/node_modules/oidc-provider" ] \
   || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null; then
    echo "npm is missing; installing Debian's nodejs and npm packages for the OIDC tests"
    apt_install nodejs npm || true
  fi
  if ! command -v npm >/dev/null; then
    echo "error: npm is missing; the OIDC tests need Node.js 20+ and npm" >&2
    exit 1
  fi
  echo "installing the test OpenID Provider (npm ci --prefix tests/oidc)"
  npm ci --prefix "$oidc_dir" --no-audit --no-fund --loglevel=error
fi
