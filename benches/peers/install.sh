#!/usr/bin/env bash
# Installs the peer tools the `peers` benchmark runs beside llmpulse, into a cache folder
# ($LLMPULSE_PEERS_DIR, default ~/.cache/llmpulse-peers), once:
#   - llm-bench 0.3.1, from crates.io (a few minutes' build on 2 cores);
#   - with --guidellm, GuideLLM 0.8.1 from PyPI into a venv there (about 6 GB with its CUDA wheels;
#     about 5 minutes here). The benchmark feeds it prompts from a file: no tokenizer needed.
#   - with --analysis, Apache Otava 0.8.0 and DuckDB 2.0.1 from PyPI into a venv there, for the
#     watch_otava and report_scale benchmarks (under a minute).
# Not part of CI. Then: cargo bench -p llmpulse --bench peers (watch_otava, report_scale)
set -euo pipefail
DIR="${LLMPULSE_PEERS_DIR:-$HOME/.cache/llmpulse-peers}"
mkdir -p "$DIR"
if [ ! -x "$DIR/bin/llm-bench" ]; then
  CARGO_TARGET_DIR="$DIR/build" cargo install llm-bench --version 0.3.1 --locked --root "$DIR"
  rm -rf "$DIR/build"
fi
echo "llm-bench: $DIR/bin/llm-bench"
if [ "${1:-}" = "--guidellm" ]; then
  if [ ! -x "$DIR/guidellm-venv/bin/guidellm" ]; then
    python3 -m venv "$DIR/guidellm-venv"
    "$DIR/guidellm-venv/bin/pip" install --quiet guidellm==0.8.1
  fi
  echo "guidellm: $DIR/guidellm-venv/bin/guidellm"
fi
if [ "${1:-}" = "--analysis" ]; then
  if [ ! -x "$DIR/analysis-venv/bin/otava" ]; then
    python3 -m venv "$DIR/analysis-venv"
    "$DIR/analysis-venv/bin/pip" install --quiet apache-otava==0.8.0 duckdb==2.0.1
  fi
  echo "otava and duckdb: $DIR/analysis-venv/bin/python"
fi
