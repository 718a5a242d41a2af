#!/usr/bin/env bash
# Generate the socket frames' TypeScript types from the socket's contract with the AsyncAPI
# CLI (its `generate models`, Modelina inside), pinned by conformance/asyncapi's lockfile,
# into src/generated/, then type-check src/client.ts against them with strict tsc.
#
#   ./check.sh [DOCUMENT]   DOCUMENT: a path or URL (default ../../openapi/asyncapi.yaml;
#                           a server's is http://HOST:PORT/api/asyncapi.yaml)
#
# The options are those a client keeps JSON's shape with: plain interfaces (no classes to
# construct), string unions for enums, wire property names as they are (`group_id`, never
# `groupId`), descriptions as comments. Needs node and npm (and the npm registry for the
# first install only). Offline and quiet as conformance/asyncapi/validate.sh: analytics off,
# no check for a newer CLI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cli="$here/../../conformance/asyncapi"
document="${1:-$here/../../openapi/asyncapi.yaml}"

install() {  # npm ci in $1 unless node_modules holds what its lockfile pins
    if [[ ! -f "$1/node_modules/.package-lock.json" || "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]]; then
        (cd "$1" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    fi
}
install "$cli"
install "$here"

export ASYNCAPI_METRICS_CONFIG_PATH="$cli/analytics.json"
export ASYNCAPI_SKIP_NEW_VERSION_CHECK=true
rm -rf "$here/src/generated"
"$cli/node_modules/.bin/asyncapi" generate models typescript "$document" \
    --output "$here/src/generated" \
    --tsModelType interface --tsEnumType union --tsRawPropertyNames \
    --tsExportType named --tsModuleSystem ESM --tsIncludeComments --no-interactive
node "$here/node_modules/typescript/bin/tsc" --project "$here/tsconfig.json"
