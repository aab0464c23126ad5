#!/usr/bin/env bash
# suite_deploy.sh -- what running `rerank serve` in production needs, black-box on the small XLM-R
# test model: the serve flags (--served-model-name and its alias --model-name, --log-format json),
# one JSON access-log object per request with its X-Request-Id, /openapi.json validated as an
# OpenAPI document and against real answers of every route (tests/deploy_check.mjs, validators from
# npm), /docs in Debian's headless Chromium (screenshot + a query typed into the page, ranking read
# back and compared with `rerank rank`), and the offline checks of the deployment files: deploy/k8s
# (kubectl client-side dry run where it works without a cluster, and a cross-check of every probe
# path, port, flag and environment variable against `rerank serve --help` and the server's routes),
# deploy/rerank.service (systemd-analyze verify, its ExecStart run), the Dockerfile (static checks:
# stages, non-root user, health check route, runtime packages of every linked library; a build
# and run only where a builder and the Debian base images are available offline).
# Prints "N passed, N failed, N skipped"; SKIPs what needs a missing tool.
set -u
BUILD=${RR_BUILD:-build}
TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
MODEL=${RR_SERVER_MODEL:-$TESTDATA/models/xlmr_f32}
BIN=$BUILD/rerank
PY=/usr/bin/python3
SHOT=${RR_DOCS_SCREENSHOT:-$BUILD/docs_page.png}
. "$(dirname "$0")/lib.sh"
# tally FILE: adds the ok / not ok lines a helper printed
tally() {
    local np nf
    np=$(grep -c '^ok - ' "$1"); nf=$(grep -c '^not ok - ' "$1")
    pass=$((pass + np)) fail=$((fail + nf))
}


have_model=1
if [ ! -x "$BIN" ] || [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
    have_model=0
    skp "server checks: need $BIN and the test model $MODEL with tokenizer.json"
fi

if [ "$have_model" = 1 ]; then
    # ------------------------------------------------------------ flags
    help=$("$BIN" serve --help)
    for f in --served-model-name --model-name --log-format; do
        grep -q -- "$f" <<<"$help" && ok "serve --help lists $f" || bad "serve --help lists $f"
    done
    if "$BIN" serve -m "$MODEL" --log-format xml 2>/dev/null; then bad "--log-format xml refused"; else ok "--log-format xml refused"; fi

    # ------------------------------------------------------------ JSON access log, served model name
    if start_server json --log-format json --served-model-name pool-model; then
        BASE=http://127.0.0.1:$PORT
        out=$(curl -s -H 'X-Request-Id: suite-deploy-1' "$BASE/v1/rerank" -d '{"query":"capital of France","documents":["Paris.","Bananas."]}')
        grep -q '"model":"pool-model"' <<<"$out" && ok "--served-model-name in answers" || bad "--served-model-name in answers: $out"
        curl -s "$BASE/health" >/dev/null
        curl -s "$BASE/v1/rerank" -d '{"query":1}' >/dev/null
        sleep 0.2
        # the line before "listening on" is the /ready-less start; every other line must be JSON
        if "$PY" - "$tmp/json.log" <<'PYEOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
objs = [json.loads(l) for l in lines]
need = {"time", "method", "route", "path", "status", "total_ms", "request_id", "client"}
for o in objs:
    assert need <= o.keys(), o
rr = [o for o in objs if o["request_id"] == "suite-deploy-1"]
assert len(rr) == 1, rr
o = rr[0]
assert o["method"] == "POST" and o["route"] == "/v1/rerank" and o["status"] == 200, o
assert o["documents"] == 2 and o["tokens"] > 0 and o["windows"] == 2, o
assert o["queue_ms"] >= 0 and o["total_ms"] >= o["queue_ms"], o
assert o["time"].endswith("Z") and "T" in o["time"], o
health = [o for o in objs if o["route"] == "/health"]
assert health and len(health[0]["request_id"]) == 16 and "documents" not in health[0], health
bad = [o for o in objs if o["status"] == 422]
assert bad and bad[0]["route"] == "/v1/rerank", objs
print("%d JSON access-log lines checked" % len(objs))
PYEOF
        then ok "JSON access log"; else bad "JSON access log: $(cat "$tmp/json.log")"; fi
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server with --log-format json starts"
    fi
    if start_server alias --model-name alias-name --quiet; then
        out=$(curl -s "http://127.0.0.1:$PORT/v1/rerank" -d '{"query":"q","documents":["a"]}')
        grep -q '"model":"alias-name"' <<<"$out" && ok "--model-name is an alias" || bad "--model-name alias: $out"
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server with --model-name starts"
    fi

    # ------------------------------------------------------------ OpenAPI and /docs
    if ! command -v node >/dev/null || [ ! -d tests/node_modules/@seriousme/openapi-schema-validator ] ||
        [ ! -d tests/node_modules/ajv ]; then
        skp "OpenAPI validation: needs node and tests/node_modules (scripts/install-deps.sh)"
    elif start_server api --quiet; then
        (cd tests && node deploy_check.mjs openapi "$PORT") >"$tmp/openapi.out" 2>&1
        grep -v '^ok - ' "$tmp/openapi.out"
        echo "($(grep -c '^ok - ' "$tmp/openapi.out") OpenAPI checks passed)"
        tally "$tmp/openapi.out"
        if [ ! -x /usr/bin/chromium ] || [ ! -d tests/node_modules/playwright-core ]; then
            skp "/docs in a browser: needs Debian's chromium and playwright-core in tests/node_modules"
        else
            query="capital of France"
            case "$SHOT" in /*) shot_abs=$SHOT ;; *) shot_abs=$PWD/$SHOT ;; esac
            printf '%s\n' "Berlin is the capital of Germany." "Paris is the capital of France." "Bananas are yellow." \
                "Die Hauptstadt Frankreichs ist Paris." >"$tmp/docs.txt"
            (cd tests && DOCS_QUERY="$query" DOCS_DOCUMENTS="$(cat "$tmp/docs.txt")" timeout 180 \
                node deploy_check.mjs browser "$PORT" "$shot_abs") >"$tmp/page.json" 2>"$tmp/page.err"
            tally "$tmp/page.json"
            grep '^not ok' "$tmp/page.json"
            "$PY" -c 'import json,sys; [print(json.dumps(l)) for l in open(sys.argv[1]).read().splitlines()]' "$tmp/docs.txt" >"$tmp/docs.jsonl"
            "$BIN" rank -m "$MODEL" -q "$query" --documents "$tmp/docs.jsonl" --no-documents >"$tmp/rank.json" 2>/dev/null
            if "$PY" - "$tmp/page.json" "$tmp/rank.json" <<'PYEOF'
import json, sys
page = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
rank = json.load(open(sys.argv[2]))["results"]
assert page["indices"] == [r["index"] for r in rank], (page, rank)
assert all(abs(a - r["relevance_score"]) < 1e-6 for a, r in zip(page["scores"], rank)), (page, rank)
PYEOF
            then ok "/docs in Chromium: the ranking read back from the page equals rerank rank ($(tail -n 1 "$tmp/page.json"))"
            else bad "/docs ranking: $(cat "$tmp/page.json" "$tmp/page.err" | tail -5)"; fi
            [ -s "$SHOT" ] && ok "/docs screenshot written to $SHOT" || bad "/docs screenshot"
        fi
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server for the OpenAPI checks starts"
    fi
fi

# ---------------------------------------------------------------- deployment files
# run_args NAME ARGS...: runs `rerank ARGS` as the deployment would (the model swapped for the test
# model, the port for a free one, the host for 127.0.0.1) and checks that it starts and that /health
# and /ready answer 200
run_args() {
    local name=$1; shift
    local a=() prev=""
    for x in "$@"; do
        case "$prev" in
        -m | --model) x=$MODEL ;;
        --port) x=0 ;;
        --host) x=127.0.0.1 ;;
        esac
        a+=("$x"); prev=$x
    done
    HF_HOME=$tmp/hf HF_HUB_OFFLINE=1 "$BIN" "${a[@]}" 2>"$tmp/$name.log" &
    local pid=$! port=""
    pids+=("$pid")
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    local h r
    h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    r=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    [ -n "$port" ] && [ "$h" = 200 ] && [ "$r" = 200 ]
}

if [ "$have_model" = 1 ] && [ -x "$PY" ] && "$PY" -c 'import yaml' 2>/dev/null; then
    "$BIN" serve --help >"$tmp/serve.help"
    "$BIN" pull --help >"$tmp/pull.help" 2>&1
    if start_server metrics --quiet; then
        curl -s "http://127.0.0.1:$PORT/metrics" >"$tmp/metrics.txt"
        kill "$SPID"; wait "$SPID" 2>/dev/null
    fi
    # kubectl renders the kustomization offline; a client-side dry run (`kubectl apply --dry-run=client`)
    # needs an API server for the schemas, so without a cluster the parsed checks below stand in for it
    if command -v kubectl >/dev/null && kubectl kustomize deploy/k8s >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
        ok "kubectl kustomize deploy/k8s renders ($(grep -c '^kind:' "$tmp/k8s.yaml") objects)"
    else
        command -v kubectl >/dev/null && bad "kubectl kustomize deploy/k8s: $(cat "$tmp/kustomize.err")"
        command -v kubectl >/dev/null || skp "kubectl not installed: manifests parsed directly"
        for f in deployment service hpa pdb; do cat "deploy/k8s/$f.yaml"; echo "---"; done >"$tmp/k8s.yaml"
    fi
    k8s_check() { # RENDERED: the checker's ok/not ok lines in $tmp/k8s.out
        "$PY" tests/deploy_k8s_check.py "$1" deploy/k8s/prometheus-adapter-rules.yaml "$tmp/serve.help" \
            "$tmp/pull.help" src/server/openapi.json "$tmp/metrics.txt" >"$tmp/k8s.out" 2>&1
    }
    k8s_check "$tmp/k8s.yaml"
    grep -v '^ARGS ' "$tmp/k8s.out"
    tally "$tmp/k8s.out"
    args=$(sed -n 's/^ARGS //p' "$tmp/k8s.out")
    if [ -n "$args" ]; then
        mapfile -t argv < <("$PY" -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$args")
        run_args k8s "${argv[@]}" && ok "the Deployment's serve arguments start a server whose probes answer 200" ||
            bad "the Deployment's serve arguments: $(tail -3 "$tmp/k8s.log")"
    fi
    # the checks are not vacuous: a wrong probe path, an unknown flag and a short grace period fail
    sed 's|path: /ready|path: /readyz|' "$tmp/k8s.yaml" >"$tmp/k8s.bad1.yaml"
    sed 's|- --log-format|- --log-formats|' "$tmp/k8s.yaml" >"$tmp/k8s.bad2.yaml"
    sed 's|terminationGracePeriodSeconds: 90|terminationGracePeriodSeconds: 30|' "$tmp/k8s.yaml" >"$tmp/k8s.bad3.yaml"
    for b in 1 2 3; do
        if k8s_check "$tmp/k8s.bad$b.yaml"; then bad "a broken manifest ($b) passes the checks"; else ok "a broken manifest ($b) fails: $(grep -m1 "^not ok" "$tmp/k8s.out" | cut -c10-)"; fi
    done
else
    skp "deploy/k8s checks: need the test model and Debian's python3-yaml"
fi

# systemd unit: `systemd-analyze verify` must print nothing (it warns, exit 0, on unknown keys and
# bad values); the binary path is this build's, as the unit's must exist
if command -v systemd-analyze >/dev/null; then
    unit=$tmp/rerank.service
    sed "s|/usr/local/bin/rerank|$PWD/$BIN|" deploy/rerank.service >"$unit"
    out=$(systemd-analyze verify "$unit" 2>&1)
    rc=$?
    if [ $rc = 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify deploy/rerank.service"; else bad "systemd-analyze verify: $out"; fi
    sed 's/^ProtectSystem=strict/ProtectSystem=strictly/' "$unit" >"$tmp/bad.service"
    out=$(systemd-analyze verify "$tmp/bad.service" 2>&1)
    [ -n "$out" ] && ok "systemd-analyze verify flags a bad value" || bad "systemd-analyze verify missed ProtectSystem=strictly"
    for k in DynamicUser=yes ProtectSystem=strict StateDirectory=rerank Environment=HF_HOME=/var/lib/rerank; do
        grep -qx "$k" deploy/rerank.service && ok "unit has $k" || bad "unit has $k"
    done
    stop=$(sed -n 's/^TimeoutStopSec=//p' deploy/rerank.service)
    drain=$(sed -n 's/^ExecStart=.*--drain-timeout \([0-9]*\).*/\1/p' deploy/rerank.service)
    [ -n "$stop" ] && [ -n "$drain" ] && [ "$stop" -gt "$drain" ] && ok "TimeoutStopSec $stop > --drain-timeout $drain" ||
        bad "TimeoutStopSec ($stop) must exceed --drain-timeout ($drain)"
    if [ "$have_model" = 1 ]; then
        read -ra exec_argv < <(sed -n 's/^ExecStart=[^ ]* //p' deploy/rerank.service)
        run_args unit "${exec_argv[@]}" && ok "the unit's ExecStart arguments start a server (/health, /ready 200)" ||
            bad "the unit's ExecStart arguments: $(tail -3 "$tmp/unit.log")"
    fi
else
    skp "systemd unit: systemd-analyze not installed"
fi

# Dockerfile: static checks always; a build only where a daemon or rootless builder runs and the
# Debian base image is present offline (no registry is reachable from here)
# a sanitizer build links its runtime: the library check is about the Dockerfile's plain `make`
ASAN=$(readelf -d "$BIN" 2>/dev/null | grep -q 'libasan\|libubsan' && echo 1 || true)
if [ -x "$PY" ]; then
    RR_ASAN=$ASAN "$PY" - Dockerfile src/server/openapi.json "$BIN" >"$tmp/docker.out" 2>&1 <<'PYEOF'
import json, re, subprocess, sys
text = open(sys.argv[1]).read()
gets = {p for p, o in json.load(open(sys.argv[2])).get("paths", {}).items() if "get" in o}
def check(c, what):
    print(("ok - " if c else "not ok - ") + "Dockerfile: " + what)
lines = re.sub(r"\\\n", " ", text).splitlines()
froms = [l.split()[1] for l in lines if l.startswith("FROM ")]
check(len(froms) >= 2 and all(f.startswith("debian:12") for f in froms), "multi-stage on Debian 12 (%s)" % froms)
stages = re.split(r"^FROM ", text, flags=re.M)
final = re.sub(r"\\\n", " ", stages[-1])
user = [l.split()[1] for l in final.splitlines() if l.startswith("USER ")]
check(user and not user[-1].startswith(("root", "0")), "the final stage runs as a non-root user (%s)" % user)
check("scripts/install-deps.sh --build" in stages[1] and "make" in stages[1], "the build stage uses the README's commands")
check(not re.search(r"build-essential|-dev\b", final), "the final stage installs no compiler or -dev package")
m = re.search(r"HEALTHCHECK .*?(https?://[^/\s]+)(/\S*)", final)
check(m and m.group(2) in gets, "HEALTHCHECK asks a GET route of the server (%s)" % (m.group(2) if m else None))
check(re.search(r"^VOLUME ", final, re.M) and "HF_HOME" in final, "the model cache (HF_HOME) is a volume")
# every library the binary links comes from a package the final stage installs (or the base's libc)
need = re.findall(r"NEEDED.*\[(.*)\]", subprocess.run(["readelf", "-d", sys.argv[3]], capture_output=True, text=True).stdout)
import os
paths = {}
for l in subprocess.run(["ldd", sys.argv[3]], capture_output=True, text=True).stdout.splitlines():
    m2 = re.match(r"\s*(\S+) => (/\S+)", l) or re.match(r"\s*(/\S+/(\S+)) \(", l)
    if m2 and "=>" in l:
        paths[m2.group(1)] = m2.group(2)
    elif m2:
        paths[m2.group(2)] = m2.group(1)
installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", " ".join(l for l in final.splitlines() if "apt-get install" in l or l.strip().startswith("lib"))))
missing = []
for lib in need:
    # the file the loader really uses (ldd), so a library several packages ship resolves to this one
    path = paths.get(lib, "*/" + lib)
    owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout.split(":")[0]
    if not owner:
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True).stdout.split(":")[0]
    if owner not in installed and owner != "libc6":  # libc6 (libc, libm, the loader) is in every base image
        missing.append("%s (%s)" % (lib, owner))
import os
if os.environ.get("RR_ASAN"):
    print("# sanitizer build: linked libraries not checked against the Dockerfile")
else:
    check(need and not missing, "the final stage installs the package of every linked library%s" % (": missing " + ", ".join(missing) if missing else ""))
PYEOF
    cat "$tmp/docker.out"
    tally "$tmp/docker.out"
fi
# a build: docker where a daemon runs, else podman (Debian's; `--isolation chroot`, which needs no
# cgroups, so it works inside a container too). Base images: pulled where a registry is reachable,
# else made from the Debian archive by deploy/debian-base-image.sh. The image is then run: with
# `podman run`/`docker run` where the runtime may set rlimits, else (a container without
# CAP_SYS_RESOURCE, as the development machine) by chroot into a container's root as its USER.
builder=""
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
elif command -v podman >/dev/null; then builder=podman; fi
if [ "${RR_DOCKER_BUILD:-1}" = 0 ]; then
    skp "image build: RR_DOCKER_BUILD=0"
elif [ -z "$builder" ]; then
    skp "image build: no running docker daemon and no podman (Debian package podman)"
elif ! $builder image exists debian:12 2>/dev/null && ! $builder image inspect debian:12 >/dev/null 2>&1; then
    skp "image build: no debian:12 base image and no registry here (deploy/debian-base-image.sh makes it from the Debian archive)"
else
    bargs=()
    [ "$builder" = podman ] && bargs=(--isolation=chroot --format docker --network=host)
    if timeout 1200 $builder build "${bargs[@]}" -t localhost/rerank-test:latest . >"$tmp/docker.build" 2>&1; then
        ok "$builder build -t rerank . (Dockerfile)"
        hc=$($builder image inspect --format '{{json .Config.Healthcheck}}' localhost/rerank-test:latest 2>/dev/null)
        grep -q '/ready' <<<"$hc" && ok "the image's health check asks /ready" || bad "the image's health check: $hc"
        hport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        cid=$($builder create localhost/rerank-test:latest)
        root=$($builder mount "$cid" 2>/dev/null)
        user=$($builder image inspect --format '{{.Config.User}}' localhost/rerank-test:latest)
        if [ -n "$root" ] && [ -d "$root/usr/local/bin" ]; then
            # the image's own files, libraries and user; the test model copied in; host network
            mkdir -p "$root/m" && cp -r "$MODEL"/. "$root/m/"
            chroot --userspec="$user" "$root" env HF_HOME=/models /usr/local/bin/rerank serve -m /m --host 127.0.0.1 \
                --port "$hport" 2>"$tmp/image.log" &
            ipid=$!
            pids+=("$ipid")
            code=""
            for _ in $(seq 1 100); do
                code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hport/ready")
                [ "$code" = 200 ] && break
                sleep 0.1
            done
            [ "$code" = 200 ] && ok "the image's rerank serves as $user with the image's libraries (/ready 200)" ||
                bad "the image's rerank: /ready $code: $(tail -3 "$tmp/image.log")"
            # the health check command itself, inside the image, against that server
            hcmd=$("$PY" -c 'import json,sys; h=json.loads(sys.argv[1]); print(h["Test"][-1])' "$hc" 2>/dev/null)
            hcmd=${hcmd//8080/$hport}
            chroot --userspec="$user" "$root" /bin/sh -c "$hcmd" && ok "the image's HEALTHCHECK passes against it" ||
                bad "the image's HEALTHCHECK ($hcmd) fails"
            out=$(curl -s "http://127.0.0.1:$hport/v1/rerank" -d '{"query":"q","documents":["a","b"]}')
            grep -q '"results"' <<<"$out" && ok "the image's server ranks" || bad "the image's server ranks: $out"
            kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null
            [ "$(chroot --userspec="$user" "$root" id -u)" != 0 ] && ok "the image's user is not root" || bad "the image runs as root"
        else
            bad "cannot mount the container's root to run it"
        fi
        $builder umount "$cid" >/dev/null 2>&1
        $builder rm -f "$cid" >/dev/null 2>&1
    else
        bad "$builder build: $(tail -5 "$tmp/docker.build")"
    fi
fi

finish
