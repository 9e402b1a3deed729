#!/usr/bin/env bash
# Mean squared error and its gradient with respect to the input, tensors as JSON arrays.
set -euo pipefail
URL="${LOSS_SERVICE_URL:-http://127.0.0.1:8000}"
AUTH=()
if [[ -n "${LOSS_SERVICE_API_KEY:-}" ]]; then AUTH=(-H "Authorization: Bearer ${LOSS_SERVICE_API_KEY}"); fi

curl -fsS "${AUTH[@]}" "$URL/v1/losses/mse_loss" \
  -H 'Content-Type: application/json' \
  -d '{"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": ["input"]}'
echo
