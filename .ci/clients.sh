# Sourced by .ci/run: the pinned tools of the generated-client and offline-docs tests
# (tests/test_generated_clients.py, tests/test_docs_offline.py), then
# LOSS_SERVICE_REQUIRE_TOOLS=1 so that those tests fail, never skip, when a tool is missing.
# Fails loudly when a tool cannot be installed.
OPENAPI_PYTHON_CLIENT_VERSION=0.28.3  # PyPI
OPENAPI_GENERATOR_VERSION=7.26.0      # PyPI openapi-generator-cli: ships openapi-generator's jar

echo "== tools for the generated clients and the offline docs"
missing_debs=()
command -v javac >/dev/null || missing_debs+=(default-jdk-headless)
[ -x /usr/bin/chromium ] || missing_debs+=(chromium)
[ -f /usr/share/java/jakarta-annotation-api.jar ] || missing_debs+=(libjakarta-annotation-api-java)
command -v npm >/dev/null || missing_debs+=(nodejs npm)
if [ "${#missing_debs[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing ${missing_debs[*]} and cannot install them (needs root and apt-get)" >&2
        return 1 2>/dev/null || exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing_debs[@]}" >/dev/null
fi
pip install -q "openapi-python-client==${OPENAPI_PYTHON_CLIENT_VERSION}" \
    "openapi-generator-cli==${OPENAPI_GENERATOR_VERSION}"
(cd examples/generated/typescript && npm ci --no-audit --no-fund --silent)
javac -version && /usr/bin/chromium --version && openapi-python-client --version
export LOSS_SERVICE_REQUIRE_TOOLS=1
