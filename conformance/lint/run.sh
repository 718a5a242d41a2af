#!/usr/bin/env bash
# Lint openapi/openapi.yaml with Spectral (pinned by package-lock.json) and the ruleset in
# .spectral.yaml at the repository root: any error fails, warnings are shown.
# Installs Spectral into conformance/lint/node_modules first when it is missing or stale.
# Needs node and npm (and the npm registry for the first install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -x node_modules/.bin/spectral || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
exec node_modules/.bin/spectral lint --ruleset ../../.spectral.yaml --fail-severity error \
    "$@" ../../openapi/openapi.yaml
