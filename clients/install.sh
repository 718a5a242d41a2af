#!/usr/bin/env bash
# Install what the client tests (tests/clients/) need beyond the Python test extra:
# Debian's chromium for the browser checks, a Java runtime for openapi-generator (its jar
# comes with the test extra), and the npm packages of clients/typescript, clients/browser and
# clients/socket-types, as pinned by their package-lock.json (socket-types' check.sh installs
# the AsyncAPI CLI of conformance/asyncapi itself). Idempotent and quiet: each step is skipped
# when already done, and prints only what it does or why it cannot. Without node and npm, Java or
# chromium (not root, no apt-get), the tests that need them skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf 'clients/install.sh: %s\n' "$*"; }

# Runs a command quietly; shows its output only when it fails.
quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

debian=()  # Debian packages to install
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    debian+=(chromium)
fi
if ! command -v java >/dev/null 2>&1; then
    debian+=(default-jre-headless)
fi
if [ ${#debian[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's ${debian[*]}"
        quietly apt-get update -qq
        quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debian[@]}"
    else
        say "${debian[*]} missing and cannot be installed here (needs root and apt-get); the browser tests (chromium) or the openapi-generator tests (Java) will skip"
    fi
fi

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    say "node and npm are missing; the TypeScript and browser tests will skip"
    exit 0
fi

for project in typescript browser socket-types; do
    # npm writes node_modules/.package-lock.json on install: newer than the lockfile means
    # node_modules holds what the lockfile pins.
    if [ ! -f "$project/node_modules/.package-lock.json" ] ||
        [ "$project/package-lock.json" -nt "$project/node_modules/.package-lock.json" ]; then
        say "npm ci in clients/$project"
        (cd "$project" && quietly npm ci --no-audit --no-fund --loglevel=error)
    fi
done
