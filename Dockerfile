# Loss Service container image.
#
#   docker build -t loss-service .                      # CPU torch (default)
#   docker build -t loss-service:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Both stages start from BASE_IMAGE, so the virtual environment built in the first one finds
# the same Python at the same path in the second. A base image without Python (the CUDA ones)
# gets Debian/Ubuntu's python3.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
# torch first, from the index that matches the base image (CPU or CUDA wheels), at the version
# pyproject.toml pins; installing the project afterwards then finds it satisfied.
# hadolint ignore=DL3013
RUN torch_pin="$(python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next(d for d in deps if d.startswith("torch")))')" \
    && pip install --index-url "${TORCH_INDEX_URL}" "${torch_pin}"
COPY service ./service
# The project's own dependencies are pinned in pyproject.toml (torch exactly).
# hadolint ignore=DL3013
RUN pip install . && python -c "import service.app"

FROM ${BASE_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /var/lib/loss-service --no-create-home app \
    && mkdir -p /var/lib/loss-service /run/loss-service-metrics \
    && chown app:app /var/lib/loss-service /run/loss-service-metrics
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOSS_SERVICE_HOST=0.0.0.0 \
    LOSS_SERVICE_PORT=8000 \
    LOSS_SERVICE_WORKERS=1 \
    LOSS_SERVICE_STATE_DIR=/var/lib/loss-service \
    PROMETHEUS_MULTIPROC_DIR=/run/loss-service-metrics
WORKDIR /var/lib/loss-service
VOLUME ["/var/lib/loss-service"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LOSS_SERVICE_PORT', '8000'), timeout=4)"]
# uvicorn answers SIGTERM (docker stop) by finishing in-flight requests, then the lifespan
# records running jobs as interrupted; keep `docker stop -t` above LOSS_SERVICE_SHUTDOWN_TIMEOUT_S.
CMD ["loss-service"]
