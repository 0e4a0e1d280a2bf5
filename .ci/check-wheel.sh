#!/usr/bin/env bash
# The pip install as a user gets it: builds the llmpulse wheel with maturin (bindings = "bin",
# cli/pyproject.toml) on the tests' debug build, installs it into a fresh virtual environment
# with no index (nothing but the wheel), and runs the quickstart from the installed command.
set -euo pipefail
cache="${LLMPULSE_CI_CACHE:?}"
venv="$cache/maturin-venv"
if [ ! -x "$venv/bin/maturin" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "maturin>=1.5,<2"
fi
"$venv/bin/maturin" --version
out=target/wheels-ci
rm -rf "$out"
# The dev profile: the tests' build has compiled the dependencies already. No manylinux repair:
# the wheel is for this machine (the release workflow builds the manylinux ones).
"$venv/bin/maturin" build --profile dev --locked -m cli/Cargo.toml --out "$out" \
  --auditwheel skip --quiet
wheel=$(ls "$out"/llmpulse-*.whl)
echo "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
try=$(mktemp -d)
trap 'rm -rf "$try"' EXIT
python3 -m venv "$try/venv"
"$try/venv/bin/pip" install --quiet --no-index "$wheel"
cd "$try"
PATH="$try/venv/bin:$PATH"
command -v llmpulse | grep -q "^$try/venv/bin/llmpulse$"
llmpulse --version | tee version.txt
grep -q "stores: local, s3, gcs" version.txt
XDG_CACHE_HOME="$try/cache" llmpulse run --quiet >manifest-path.txt
python3 - "$(cat manifest-path.txt)" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["records"] == 80, m["records"]
print(f"the installed llmpulse ran the quickstart: {m['records']} records, {m['successes']} ok")
PY
