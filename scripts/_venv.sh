# Sourced by the scripts: `ensure_venv [EXTRAS]` makes .venv (once) and installs the project
# into it, then puts .venv/bin first on PATH. The install is skipped when .venv already holds
# it for the same pyproject.toml and extras, so a second start needs no package index.
# (Arguments of the sourcing script stay its own: they never reach pip.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV_STAMP=.venv/im-api-installed

# Whether .venv holds the project as pyproject.toml is now, with EXTRAS ("" : any extras).
venv_up_to_date() {
    local extras="$1" project
    [ -f "$VENV_STAMP" ] || return 1
    project="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -z "$extras" ]; then
        grep -q "^$project " "$VENV_STAMP"
    else
        grep -qxF "$project extras=[$extras]" "$VENV_STAMP"
    fi
}

ensure_venv() {
    local extras="${1:-}"
    if [ ! -x .venv/bin/python ]; then
        if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "scripts: Python 3.10 or newer is needed as python3 (found: $(python3 --version 2>&1))" >&2
            return 1
        fi
        python3 -m venv .venv
    fi
    if ! venv_up_to_date "$extras"; then
        # Editable install: the code and the spec are read from the checkout, so only a change
        # of pyproject.toml (dependencies, entry points) needs a new install.
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
        echo "$(sha256sum pyproject.toml | cut -d' ' -f1) extras=[$extras]" >>"$VENV_STAMP"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
}
