#!/usr/bin/env bash
# Opens llmpulse reports in headless Chromium (Debian's package, installed if missing) and
# fails on any console message or on a chart that did not render (the page's own check sets
# <html data-charts="ok N"> or "failed IDS"). Saves desktop and phone screenshots and the page
# printed to PDF.
#   [LLMPULSE_SWEEP_RECORDS=DIR] .ci/check-report.sh BIN OUT_DIR
set -euo pipefail
BIN=$(realpath "${1:?llmpulse binary}")
OUT=$(realpath -m "${2:?output directory}")
mkdir -p "$OUT"

if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
fi
chromium --version

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 1. The README's path: the quickstart run (one run, one time bucket), then its report.
(cd "$work" && "$BIN" run --quiet >/dev/null 2>&1 && "$BIN" report --from results --out quickstart >/dev/null)
# 2. A SYNTHETIC week of hourly runs, so the charts over time, the regression flags and the
#    campaign strip have something to draw.
"$BIN" synth --records 13440 --every 1h --start 2026-11-01 --campaign synthetic-week \
  --out "$work/history" 2>/dev/null
"$BIN" report --from "$work/history" --out "$work/history-report" >/dev/null
# 3. A real server-configuration sweep, when one was run (LLMPULSE_SWEEP_RECORDS): the
#    configuration table and the flash-attention pairs.
# 4. The published dashboard of a SYNTHETIC history with three regressions and an improvement,
#    after `watch --notify` kept its alerts (the receiver is down: they stay pending).
"$BIN" synth --scenario changes --targets 6 --records 10080 --every 6h --start 2026-11-01 \
  --out "$work/watched" 2>/dev/null
printf '[[targets]]\nname = "sim"\nprovider = "sim"\nmodel = "m"\n[watch]\ndelivery_timeout = "1s"\n[[notify]]\nkind = "webhook"\nurl_env = "LLMPULSE_CHECK_HOOK"\n' \
  >"$work/watch.toml"
LLMPULSE_CHECK_HOOK=http://127.0.0.1:9/ "$BIN" watch --from "$work/watched" --config "$work/watch.toml" \
  --notify --until 2026-11-22 --fail-on never >/dev/null 2>&1
"$BIN" report --from "$work/watched" --until 2026-11-22 --publish --out "$work/watched-report" >/dev/null 2>&1
for id in changes-table alerts; do
  grep -q "id=\"$id\"" "$work/watched/dashboard/index.html" ||
    { echo "FAIL: the published dashboard has no #$id"; exit 1; }
done
grep -q '"schemaVersion":1' "$work/watched/dashboard/status.json" ||
  { echo "FAIL: dashboard/status.json is not a shields.io endpoint"; exit 1; }
pages=(quickstart history-report watched/dashboard)
if [ -n "${LLMPULSE_SWEEP_RECORDS:-}" ]; then
  "$BIN" report --from "$LLMPULSE_SWEEP_RECORDS" --out "$work/sweep-report" >/dev/null
  grep -q 'id="flash-attention"' "$work/sweep-report/index.html" ||
    { echo "FAIL: the sweep report has no flash-attention table"; exit 1; }
  pages+=(sweep-report)
  # The example's own select line (its header) runs through on what the sweep measured.
  select_line=$(grep -o 'llmpulse select --from results .*' examples/sweep.toml | head -1)
  # shellcheck disable=SC2086  # the example's flags, split as a shell would
  "$BIN" select --from "$LLMPULSE_SWEEP_RECORDS" ${select_line#llmpulse select --from results} \
    >"$work/sweep-select.txt" ||
    { echo "FAIL: examples/sweep.toml's select line: $(cat "$work/sweep-select.txt")"; exit 1; }
fi

# Chromium now and then dies on start (a segfault on a loaded machine): a run that ends by a
# signal or the timeout is tried again, up to three times; any other failure counts at once.
retry_chrome() {
  local try rc=0
  for try in 1 2 3; do
    "$@" && return 0
    rc=$?
    if [ "$rc" -lt 124 ]; then return "$rc"; fi
    echo "chromium ended with $rc (try $try of 3)" >&2
  done
  return "$rc"
}

chrome=(chromium --headless --no-sandbox --disable-gpu --disable-background-networking
  --disable-dev-shm-usage --hide-scrollbars)
status=0
for dir in "${pages[@]}"; do
  page="file://$work/$dir/index.html"
  name=${dir//\//-}
  retry_chrome timeout 120 "${chrome[@]}" --enable-logging=stderr --v=0 --dump-dom "$page" \
    >"$OUT/$name.dom.html" 2>"$OUT/$name.chromium.log"
  verdict=$(grep -o 'data-charts="[^"]*"' "$OUT/$name.dom.html" | head -1 || true)
  console=$(grep -E ':CONSOLE[:(]' "$OUT/$name.chromium.log" || true)
  retry_chrome timeout 120 "${chrome[@]}" --window-size=1280,4800 --screenshot="$OUT/$name.png" "$page" 2>/dev/null
  retry_chrome timeout 120 "${chrome[@]}" --window-size=390,8000 --screenshot="$OUT/$name-phone.png" "$page" 2>/dev/null
  retry_chrome timeout 120 "${chrome[@]}" --no-pdf-header-footer --print-to-pdf="$OUT/$name.pdf" "$page" 2>/dev/null
  if [ ! -s "$OUT/$name.pdf" ]; then
    echo "FAIL: $name: printing to PDF produced nothing"
    status=1
  fi
  echo "$name: ${verdict:-no verdict} ($OUT/$name.png, $name-phone.png, $name.pdf)"
  if [[ "$verdict" != data-charts=\"ok* ]]; then
    echo "FAIL: $name: the page's chart check did not pass: ${verdict:-the script did not run}"
    status=1
  fi
  if [ -n "$console" ]; then
    echo "FAIL: $name: console messages:"; echo "$console"
    status=1
  fi
done
exit $status
