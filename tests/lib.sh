# lib.sh -- sourced by the shell suites (it runs nothing by itself): the "ok - / not ok - / skip -"
# result lines with their counts and summary, the clean-up of started processes and the scratch
# folder, and starting `rerank serve` on a port the kernel picks. A suite that prints its results
# another way defines its own ok / bad after sourcing this file; one that owns more processes
# defines its own cleanup.
pass=0 fail=0 skipped=0
pids=()
tmp=$(mktemp -d)
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
skp() { echo "skip - $1"; skipped=$((skipped + 1)); }
finish() { echo "$pass passed, $fail failed, $skipped skipped"; [ "$fail" -eq 0 ]; exit $?; }
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# serve_port LOG PID: prints the port the server started as PID announces in LOG ("listening on
# http://127.0.0.1:N"), waiting up to 20 s while PID lives; fails when it never does.
serve_port() {
    local log=$1 pid=$2 p=""
    for _ in $(seq 1 400); do
        p=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" 2>/dev/null | head -n 1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    return 1
}

# start_server NAME ARGS...: `$BIN serve -m $MODEL --port 0 ARGS` logging to $tmp/NAME.log; sets
# SPID, and PORT once the model is loaded; on failure prints the start of the log.
start_server() {
    local name=$1; shift
    "$BIN" serve -m "$MODEL" --port 0 "$@" 2>"$tmp/$name.log" &
    SPID=$!
    pids+=("$SPID")
    PORT=$(serve_port "$tmp/$name.log" "$SPID") && return 0
    echo "server $name did not start:"; head -n 20 "$tmp/$name.log"
    return 1
}
