# Loss Service container image.
#
#   docker build -t loss-service .                      # CPU torch (default)
#   docker build -t loss-service:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#   docker build -t loss-service:fleet --build-arg EXTRAS=ray,postgres .   # docs/fleet.md
#
# EXTRAS (default: none) names the project's optional extras to install: with `ray,postgres`
# the same image serves as an API replica against PostgreSQL and as a Ray head or worker
# (`ray start ...` as its command).
#
# Both stages start from BASE_IMAGE, so the virtual environment built in the first one finds
# the same Python at the same path in the second. A base image without Python (the CUDA ones)
# gets Debian/Ubuntu's python3.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# The torch requirement alone, as a file: the torch layer below is then rebuilt only when the
# pin changes, not whenever pyproject.toml or the README does.
FROM ${BASE_IMAGE} AS pins
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY pyproject.toml /src/
RUN grep -o '"torch==[^"]*"' /src/pyproject.toml | tr -d '"' > /torch-requirement.txt \
    && test -s /torch-requirement.txt

FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=
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
# torch first, from the index that matches the base image (CPU or CUDA wheels), at the version
# pyproject.toml pins; installing the project afterwards then finds it satisfied.
COPY --from=pins /torch-requirement.txt ./
# hadolint ignore=DL3013
RUN pip install --index-url "${TORCH_INDEX_URL}" -r torch-requirement.txt
COPY pyproject.toml README.md ./
COPY service ./service
# The project's own dependencies are pinned in pyproject.toml (torch exactly), with the extras
# EXTRAS names (`.[ray,postgres]`; none: `.`). Then drop what the service never runs: torch's
# C++ headers, test binaries and protoc, and pip itself.
# hadolint ignore=DL3013
RUN pip install ".${EXTRAS:+[${EXTRAS}]}" && python -c "import service.app" \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && rm -rf "$site/torch/include" "$site/torch/test" \
        "$site"/torch/bin/*Test "$site"/torch/bin/test_* "$site"/torch/bin/protoc* \
    && python -m pip uninstall -y -q pip setuptools \
    && python -c "import service.app, torch; assert torch.nn.functional.mse_loss(torch.ones(2), torch.zeros(2)) == 1"

FROM ${BASE_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /var/lib/loss-service --no-create-home app \
    && mkdir -p /var/lib/loss-service \
    && chown app:app /var/lib/loss-service
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOSS_SERVICE_HOST=0.0.0.0 \
    LOSS_SERVICE_PORT=8000 \
    LOSS_SERVICE_WORKERS=1 \
    LOSS_SERVICE_STATE_DIR=/var/lib/loss-service \
    PROMETHEUS_MULTIPROC_DIR=/tmp/loss-service-metrics
WORKDIR /var/lib/loss-service
VOLUME ["/var/lib/loss-service"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LOSS_SERVICE_PORT', '8000'), timeout=4)"]
# uvicorn answers SIGTERM (docker stop) by finishing in-flight requests, then the lifespan
# records running jobs as interrupted; keep `docker stop -t` above LOSS_SERVICE_SHUTDOWN_TIMEOUT_S.
CMD ["loss-service"]
