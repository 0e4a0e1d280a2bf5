#!/usr/bin/env bash
# Installs (once, cached) the reference implementations the scorers are checked against:
# sacreBLEU (BLEU, chrF), jiwer (WER, CER), rouge-score (ROUGE, with nltk's Porter stemmer) and
# jsonschema (schema verdicts), pinned, into a venv under the CI cache.
# Prints the venv's python.
set -euo pipefail
CACHE="${LLMPULSE_CI_CACHE:-$HOME/.cache/llmpulse-ci}"
VENV="$CACHE/oracle-venv"
if ! "$VENV/bin/python" -c 'import sacrebleu, jiwer, rouge_score, jsonschema' 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --upgrade pip >&2
  "$VENV/bin/pip" install --quiet 'sacrebleu==2.5.1' 'jiwer==4.0.0' 'rouge-score==0.1.2' 'jsonschema==4.25.1' >&2
fi
echo "$VENV/bin/python"
