#!/usr/bin/env bash
# Lint openapi/openapi.yaml with the linters frontend teams run, pinned by package-lock.json:
# Spectral (ruleset .spectral.yaml at the repository root, then the OWASP API Security rules
# of owasp.spectral.yaml, each finding fixed or judged there: any error fails, warnings shown)
# and Redocly (redocly.yaml, its `recommended` rules: any error or warning fails).
# Installs them into conformance/lint/node_modules first when missing or stale.
# Needs node and npm (and the npm registry for the first install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -x node_modules/.bin/spectral || ! -x node_modules/.bin/redocly ||
    ! -d node_modules/@stoplight/spectral-owasp-ruleset ||
    package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/spectral lint --ruleset ../../.spectral.yaml --fail-severity error \
    "$@" ../../openapi/openapi.yaml
node_modules/.bin/spectral lint --ruleset owasp.spectral.yaml --fail-severity error \
    "$@" ../../openapi/openapi.yaml
redocly() {
    REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_TELEMETRY=off \
        node_modules/.bin/redocly lint --config redocly.yaml --max-problems 1000 "$@"
}
# Redocly exits non-zero on errors only; a warning fails here too.
report="$(redocly "$@" ../../openapi/openapi.yaml 2>&1)" || { echo "$report"; exit 1; }
echo "$report" | grep -v -e '^ *║' -e '^ *╔' -e '^ *╚'  # its banner about Node.js, not the spec
if echo "$report" | grep -q "You have [0-9]* warning"; then
    exit 1
fi
