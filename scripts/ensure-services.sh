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

# The browser tests (tests/browser, marker `browser`) drive Debian's own Chromium in
# headless mode; it comes from the distribution's packages, never from a test tool's
# download (`playwright install` is not used).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "Chromium is missing; installing Debian's chromium package for the browser tests"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
               apt-get install -y --no-install-recommends chromium; }; }; then
      echo "error: apt-get could not install chromium (no package mirror reachable?);" >&2
      echo "       the browser tests need /usr/bin/chromium" >&2
      exit 1
    fi
  else
    echo "error: /usr/bin/chromium is missing and cannot be installed here" >&2
    echo "       (apt-get needs root on Debian: apt-get install -y --no-install-recommends chromium);" >&2
    echo "       the browser tests in tests/browser need it" >&2
    exit 1
  fi
fi

# The researcher's tools (tests/research_api/test_researcher_guide.py): Debian's `age`
# (age and age-keygen), to open a real release as a researcher would. Without it those
# tests are skipped with the reason; installing it needs no other service.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "age is missing; installing Debian's age package for the researcher tests"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends age \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
               apt-get install -y --no-install-recommends age; }; }; then
      echo "warning: apt-get could not install age; the researcher guide tests will skip" >&2
    fi
  else
    echo "warning: age is missing and cannot be installed here (apt-get install -y age as" >&2
    echo "         root); the researcher guide tests will skip" >&2
  fi
fi

# The identity-provider tests (tests/oidc, and the browser's sign-in) run a real OpenID
# Provider, the npm package oidc-provider pinned in tests/oidc/package-lock.json, under
# Node.js. Installed here when node_modules is missing or older than the lock file.
oidc_dir="$(dirname "$0")/../tests/oidc"
if [ ! -d "$oidc_dir/node_modules/oidc-provider" ] \
   || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "npm is missing; installing Debian's nodejs and npm packages for the OIDC tests"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends nodejs npm; }
    fi
  fi
  if ! command -v npm >/dev/null; then
    echo "error: npm is missing; the OIDC tests need Node.js 20+ and npm" >&2
    exit 1
  fi
  echo "installing the test OpenID Provider (npm ci --prefix tests/oidc)"
  npm ci --prefix "$oidc_dir" --no-audit --no-fund --loglevel=error
fi
