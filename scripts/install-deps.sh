#!/usr/bin/env bash
# install-deps.sh -- installs what rerank needs to build and test on Debian 12 (run as root or with
# sudo available). Idempotent: packages already present are skipped by apt; the npm test clients are
# installed into tests/node_modules only when package.json lists something not yet there.
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --build  only what the build needs
set -eu
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

BUILD_PKGS="build-essential pkg-config libcjson-dev libutf8proc-dev libonig-dev libcurl4-openssl-dev libmicrohttpd-dev libdnnl-dev"
# the Python package (python/, `make python`, `pip install --no-index --no-build-isolation ./python`)
BUILD_PKGS="$BUILD_PKGS python3-dev python3-setuptools python3-wheel python3-numpy python3-venv"
TEST_PKGS="python3 python3-numpy python3-pytest python3-torch python3-sentencepiece clang libclang-rt-14-dev time curl"
# Node.js from Debian only where no node/npm is installed yet (a machine may carry its own, newer
# Node.js; Debian's npm package would conflict with it)
command -v node >/dev/null && command -v npm >/dev/null || TEST_PKGS="$TEST_PKGS nodejs npm"

pkgs=$BUILD_PKGS
[ "${1:-}" = "--build" ] || pkgs="$pkgs $TEST_PKGS"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ "${1:-}" != "--build" ] && [ -f tests/package.json ] && command -v npm >/dev/null; then
    if [ ! -d tests/node_modules ] || [ tests/package.json -nt tests/node_modules ]; then
        (cd tests && npm install --no-audit --no-fund --ignore-scripts --loglevel=error) && touch tests/node_modules
    fi
fi
