#!/usr/bin/env bash
# Grade a submitted loss and gradient against the service's own computation.
# Usage: grade.sh [submitted-loss]  (default: the right answer, 0.22)
set -euo pipefail
URL="${LOSS_SERVICE_URL:-http://127.0.0.1:8000}"
AUTH=()
if [[ -n "${LOSS_SERVICE_API_KEY:-}" ]]; then AUTH=(-H "Authorization: Bearer ${LOSS_SERVICE_API_KEY}"); fi
LOSS="${1:-0.22}"

curl -fsS "${AUTH[@]}" "$URL/v1/grade" \
  -H 'Content-Type: application/json' \
  -d '{"loss": "mse_loss", "input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8],
       "submission": {"loss": '"$LOSS"', "grad": {"input": [0.3333333, -0.3333333, 0.2666667]}}}'
echo
