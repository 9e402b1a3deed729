#!/usr/bin/env bash
# Cross-entropy of two rows of logits sent as raw float32 bytes (little-endian, base64), with
# the gradient answered in the same form. printf writes the bytes: 1.0f = 00 00 80 3f,
# 2.0f = 00 00 00 40, 0.5f = 00 00 00 3f, -1.0f = 00 00 80 bf.
set -euo pipefail
URL="${LOSS_SERVICE_URL:-http://127.0.0.1:8000}"
AUTH=()
if [[ -n "${LOSS_SERVICE_API_KEY:-}" ]]; then AUTH=(-H "Authorization: Bearer ${LOSS_SERVICE_API_KEY}"); fi

# logits [[1.0, 2.0, 0.5], [-1.0, 0.5, 2.0]]
LOGITS=$(printf '\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x00\x3f\x00\x00\x80\xbf\x00\x00\x00\x3f\x00\x00\x00\x40' | base64 | tr -d '\n')

curl -fsS "${AUTH[@]}" "$URL/v1/losses/cross_entropy" \
  -H 'Content-Type: application/json' \
  -d '{"input": {"shape": [2, 3], "dtype": "float32", "base64": "'"$LOGITS"'"},
       "target": [1, 2], "grad": true, "encoding": "base64"}'
echo
