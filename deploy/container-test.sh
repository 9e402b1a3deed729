#!/usr/bin/env bash
# Build the real Dockerfile and test the running container, on a machine with no container
# registry: Debian's Docker engine (started here, no bridge, no firewall changes, so containers
# use the host's network), a Debian bookworm base made with debootstrap, and the pinned CPU torch
# served from a throwaway index on 127.0.0.1. Everything started here is stopped by PID; images
# stay cached for the next run. Fails loudly when anything cannot be had.
#
#   sudo bash deploy/container-test.sh        # as root (CI runs as root)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${LOSS_SERVICE_CONTAINER_WORK:-/var/tmp/loss-service-container-test}
BASE_IMAGE=localhost/loss-service-base:bookworm
IMAGE=loss-service:ci
MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
export DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_BUILDKIT=0
mkdir -p "$WORK"

say() { printf '== container: %s\n' "$*"; }
die() { printf 'container test FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (to start a Docker engine)"

cleanup() {
    local rc=$?
    if [ -n "${INDEX_PID:-}" ]; then kill "$INDEX_PID" 2>/dev/null || true; fi
    if [ -n "${DOCKERD_PID:-}" ]; then
        # Containers this run left (a failed check) go with the engine.
        docker ps -aq --filter label=loss-service-ci | xargs -r docker rm -f >/dev/null 2>&1 || true
        kill "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$DOCKERD_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi
command -v docker >/dev/null || die "no docker client"

say "starting the engine (no bridge, no iptables, no forwarding)"
dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --host "$DOCKER_HOST" --pidfile "$WORK/dockerd.pid" --exec-root "$WORK/exec" \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { tail -n 20 "$WORK/dockerd.log" >&2; die "the Docker engine did not start"; }

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "making $BASE_IMAGE with debootstrap from $MIRROR"
    rootfs="$WORK/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    # The build's pip must trust what this host trusts (a TLS-inspecting egress, for one):
    # the host's extra certificate authorities go into this local base, never into the repo.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
fi

say "serving the pinned CPU torch from a local index"
torch_pin=$(python3 -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next(d for d in deps if d.startswith("torch")))')
index="$WORK/index"
mkdir -p "$index/wheels"
pip download -q --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$index/wheels" "$torch_pin"
python3 deploy/simple_index.py "$index/wheels" "$index/simple"
# A fixed port: the index URL is a build argument, and a new value would miss the layer cache.
port=${LOSS_SERVICE_CI_INDEX_PORT:-38123}
python3 -c "import socket, sys; socket.socket().bind(('127.0.0.1', $port))" 2>/dev/null \
    || die "port $port (the local index) is taken: set LOSS_SERVICE_CI_INDEX_PORT"
python3 -m http.server --bind 127.0.0.1 --directory "$index" "$port" >"$WORK/index.log" 2>&1 &
INDEX_PID=$!

say "building $IMAGE from the Dockerfile"
started=$(date +%s)
docker build --network host -t "$IMAGE" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg TORCH_INDEX_URL="http://127.0.0.1:$port/simple" . >"$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; die "docker build failed"; }
say "built in $(( $(date +%s) - started )) s; image size $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes"
kill "$INDEX_PID"; INDEX_PID=

say "checking the running container"
python3 deploy/container_check.py --image "$IMAGE" --fixtures tests/fixtures/mnist
say "all checks passed"
