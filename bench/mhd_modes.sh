#!/usr/bin/env bash
# mhd_modes.sh [N] -- libmicrohttpd alone (bench/mhd_modes.c) in epoll and in poll mode, each sent N
# (default 3000) half-sent connections by tests/hostile.py; prints the CLOSE-WAIT sockets left.
# The measurement behind the server's choice of poll mode (docs/ARCHITECTURE.md).
set -eu
N=${1:-3000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O1 -Wall -o "$tmp/mhd_modes" "$(dirname "$0")/mhd_modes.c" -lmicrohttpd
echo "libmicrohttpd $(dpkg-query -W -f '${Version}' libmicrohttpd12 2>/dev/null || echo '?')"
for mode in epoll poll; do
    PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$tmp/mhd_modes" "$mode" "$PORT" >"$tmp/out" &
    pid=$!
    for _ in $(seq 1 50); do grep -q listening "$tmp/out" && break; sleep 0.1; done
    printf '%-5s ' "$mode"
    /usr/bin/python3 "$(dirname "$0")/../tests/hostile.py" half_sent "$PORT" "$N" || true
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
