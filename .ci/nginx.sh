#!/usr/bin/env bash
# The compose proxy's nginx configuration (deploy/nginx/) passes `nginx -t`: Debian's nginx,
# the files mounted where docker-compose.yml mounts them, the service's name resolved locally.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends nginx-light >/dev/null
    fi
fi
command -v nginx >/dev/null || { echo "FAILED: nginx is not installed and could not be" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/conf.d" "$work/logs"
# The upstream's name exists only on the compose network: point it at loopback here.
sed 's/loss-service-upstream:8000/127.0.0.1:8000/' deploy/nginx/loss-service.conf \
    | sed "s#/etc/nginx/conf.d/#$work/conf.d/#g" > "$work/conf.d/default.conf"
cp deploy/nginx/loss-service-proxy.inc "$work/conf.d/"
cat > "$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/conf.d/*.conf;
}
CONF
nginx -t -p "$work" -c "$work/nginx.conf"
echo "deploy/nginx: nginx -t ok"
