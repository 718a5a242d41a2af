# Sourced by the scripts: make .venv (once) and install the project into it.
# Usage: . scripts/_venv.sh [extras]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
# Editable install: the spec in openapi/ is read from the checkout.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
export PATH="$PWD/.venv/bin:$PATH"
