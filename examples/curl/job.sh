#!/usr/bin/env bash
# Start a small MNIST training job and follow it as Server-Sent Events until it ends.
# The first line is the created job; then the raw event stream (id/event/data lines).
set -euo pipefail
URL="${LOSS_SERVICE_URL:-http://127.0.0.1:8000}"
AUTH=()
if [[ -n "${LOSS_SERVICE_API_KEY:-}" ]]; then AUTH=(-H "Authorization: Bearer ${LOSS_SERVICE_API_KEY}"); fi
CONFIG="${LOSS_SERVICE_JOB_CONFIG:-{\"epochs\": 1, \"train_samples\": 512, \"test_samples\": 256, \"seed\": 0\}}"

JOB=$(curl -fsS "${AUTH[@]}" "$URL/v1/jobs/mnist" -H 'Content-Type: application/json' -d "$CONFIG")
echo "$JOB"
JOB_ID=$(printf '%s' "$JOB" | grep -o '"id":"[0-9a-f]*"' | head -n 1 | cut -d '"' -f 4)

# -N: print events as they arrive; the server closes the stream after the `done` event.
curl -fsS -N "${AUTH[@]}" -H 'Accept: text/event-stream' "$URL/v1/jobs/$JOB_ID/events"
