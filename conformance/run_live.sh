#!/usr/bin/env bash
# Run the conformance suite against a real `im-api serve`, then stop it.
#
#   conformance/run_live.sh                          SQLite in a temporary folder, 1 worker
#   conformance/run_live.sh postgresql://HOST/DB     that PostgreSQL database, 2 workers
#   conformance/run_live.sh [URL] -- PYTEST-ARGS     extra pytest arguments (e.g. -x, -k)
#   conformance/run_live.sh --s3 [URL] [-- ...]      media in an S3 bucket (see below)
#
# The server gets a temporary instance folder, a fresh secret key (given to the suite as
# IM_CONFORMANCE_SECRET_KEYS, for the expired-token scenario), bcrypt cost 4, and trusts
# 127.0.0.1 as a proxy (the suite names a client address of its own per request, so the
# default limits per client address count one scenario at a time). The suite only adds
# users with fresh random names: it never empties the database.
#
# With --s3, media goes to a bucket of a real S3 endpoint started for the run: moto's server
# mode (`python -m moto.server`, from the test extra) on a free loopback port, with fake
# credentials; the server gets IM_MEDIA_URL=s3://conformance/media?endpoint=...
#
# Environment: PYTHON (default: the python on PATH; the project must be installed in it),
# IM_CONFORMANCE_WORKERS (default 1 for SQLite, 2 for PostgreSQL), IM_CONFORMANCE_EXAMPLES
# (see conformance/README.md). Exit status: pytest's (or 2 if the server did not start).
set -euo pipefail

s3=""
if [[ $# -gt 0 && $1 == "--s3" ]]; then
    s3=1
    shift
fi
database_url=""
if [[ $# -gt 0 && $1 != "--" ]]; then
    database_url=$1
    shift
fi
if [[ $# -gt 0 && $1 == "--" ]]; then
    shift
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
python=${PYTHON:-$(command -v python || command -v python3)}
if [[ -n $database_url ]]; then
    workers=${IM_CONFORMANCE_WORKERS:-2}
else
    workers=${IM_CONFORMANCE_WORKERS:-1}
fi

instance=$(mktemp -d "${TMPDIR:-/tmp}/im-conformance-live.XXXXXX")
log="$instance/server.log"
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$("$python" -c 'import secrets; print(secrets.token_urlsafe(48))')
url="http://127.0.0.1:$port/api"
server=""
moto=""
media_url=""

end() {
    local pid=$1
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

stop() {
    end "$server"
    end "$moto"
    rm -rf "$instance"
}
trap stop EXIT

if [[ -n $s3 ]]; then
    # Fake credentials for moto (it accepts any); nothing of a developer's own AWS setup.
    unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    s3_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$python" -m moto.server -H 127.0.0.1 -p "$s3_port" >"$instance/moto.log" 2>&1 &
    moto=$!
    if ! "$python" - "http://127.0.0.1:$s3_port" <<'PY'; then
import sys, time
import boto3

client = boto3.client("s3", endpoint_url=sys.argv[1])
deadline = time.monotonic() + 60
while True:
    try:
        client.create_bucket(Bucket="conformance")
        break
    except Exception:
        if time.monotonic() > deadline:
            sys.exit("run_live: the S3 endpoint did not start")
        time.sleep(0.2)
PY
        cat "$instance/moto.log" >&2
        exit 2
    fi
    media_url="s3://conformance/media?endpoint=http://127.0.0.1:$s3_port"
fi

echo "run_live: im-api serve on $url, ${database_url:+database $database_url, }${media_url:+media $media_url, }$workers worker(s)"
(
    cd "$instance"
    export IM_INSTANCE_DIR="$instance/instance" IM_DATABASE_URL="$database_url"
    export IM_MEDIA_URL="$media_url"
    export IM_SECRET_KEYS="$secret" IM_BCRYPT_ROUNDS=4
    # The suite sends each request from an address of its own (X-Forwarded-For).
    export IM_TRUSTED_PROXIES=127.0.0.1
    exec "$python" -m im_api.cli serve --port "$port" --workers "$workers" --log-level warning
) >"$log" 2>&1 &
server=$!

if ! "$python" - "$url/health" "$server" <<'EOF'; then
import os, sys, time, urllib.request

url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("run_live: the server exited")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("run_live: no answer from " + url)
EOF
    echo "run_live: server log:" >&2
    cat "$log" >&2
    exit 2
fi

status=0
(
    cd "$root"
    export IM_CONFORMANCE_URL="$url" IM_CONFORMANCE_SECRET_KEYS="$secret"
    "$python" -m pytest conformance "$@"
) || status=$?

if [[ $status -ne 0 ]]; then
    echo "run_live: last lines of the server log:" >&2
    tail -n 50 "$log" >&2 || true
fi
exit $status
