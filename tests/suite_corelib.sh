#!/usr/bin/env bash
# suite_corelib.sh -- the core library stands alone: a program that links only librerank (static,
# then shared) scores pairs exactly as `rerank score` does, pulls in neither libmicrohttpd nor libcurl
# (ldd on the shared build, nm on the static one and on librerank.a itself), and the library writes
# nothing to stdout or stderr, on success or on failure.
set -u
BUILD=${RR_BUILD:-build}
case "$BUILD" in *asan*|*tsan*|*fuzz*)
    echo "skipped under the sanitizers: a plain program linked against the sanitizer-built library would need the sanitizer runtime and flags; the link and output checks are about the plain build"
    echo "0 passed, 0 failed, 1 skipped"; exit 0 ;;
esac
TD=${RR_TESTDATA:-build/testdata}
M=$TD/models/jina_f32
CC=${CC:-cc}
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

for f in "$BUILD/librerank.a" "$BUILD/librerank.so" "$BUILD/rerank"; do
    [ -f "$f" ] || { echo "FAIL $f not built"; echo "0 passed, 1 failed"; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CORE_LIBS=$(make -s --no-print-directory print-core-libs)   # the core's own dependencies, from the Makefile

# 1. the archive itself references no HTTP or download code, and no printing or exiting
und=$(nm -u "$BUILD/librerank.a" 2>/dev/null | awk '{print $NF}' | sort -u)
if grep -qiE '^(MHD_|curl_)' <<<"$und"; then bad "librerank.a references libmicrohttpd/libcurl: $(grep -iE '^(MHD_|curl_)' <<<"$und" | head -3 | tr '\n' ' ')"
else ok "librerank.a references no MHD_* or curl_* symbol"; fi
# printing and exiting: only status.o's assertion (a programmer error, then abort) may write to stderr
out_refs=$(nm -A -u "$BUILD/librerank.a" 2>/dev/null | grep -E ' U (printf|puts|putchar|fputs|fputc|putc|perror|vprintf|vfprintf|fprintf|fwrite|exit|_exit|stdout|stderr)$' | grep -v '^[^:]*:status\.o:')
if [ -z "$out_refs" ]; then ok "librerank.a: no object but the assertion handler refers to stdout/stderr, printf or exit"
else bad "librerank.a prints or exits: $(head -3 <<<"$out_refs" | tr '\n' ' ')"; fi

# 2. static: builds against librerank.a alone
if $CC -std=gnu11 -O1 -Iinclude tests/progs/corelib_score.c "$BUILD/librerank.a" $CORE_LIBS -o "$tmp/static" 2>"$tmp/cc.log"; then
    ok "a program links against librerank.a with only the core's dependencies"
else bad "linking against librerank.a: $(head -5 "$tmp/cc.log")"; fi
if [ -x "$tmp/static" ]; then
    if nm "$tmp/static" | grep -qE ' [TU] (MHD_|curl_)'; then bad "the static program contains MHD_/curl_ symbols"
    else ok "nm: the static program has no MHD_/curl_ symbol"; fi
    if ldd "$tmp/static" | grep -qE 'libmicrohttpd|libcurl'; then bad "ldd: the static program loads libmicrohttpd/libcurl"
    else ok "ldd: the static program loads neither libmicrohttpd nor libcurl"; fi
fi

# 3. shared: builds against librerank.so alone
if $CC -std=gnu11 -O1 -Iinclude tests/progs/corelib_score.c -L"$BUILD" -lrerank -Wl,-rpath,"$(cd "$BUILD" && pwd)" -o "$tmp/shared" 2>"$tmp/cc2.log"; then
    ok "a program links against librerank.so"
else bad "linking against librerank.so: $(head -5 "$tmp/cc2.log")"; fi
if [ -x "$tmp/shared" ]; then
    deps=$(ldd "$tmp/shared")
    if grep -q 'librerank.so' <<<"$deps" && ! grep -qE 'libmicrohttpd|libcurl' <<<"$deps"; then ok "ldd: the shared program loads librerank.so and neither libmicrohttpd nor libcurl"
    else bad "ldd of the shared program: $(tr '\n' ' ' <<<"$deps")"; fi
fi
exported=$(nm -D --defined-only "$BUILD/librerank.so" | awk '{print $NF}')
if [ -n "$exported" ] && ! grep -qv '^rr_' <<<"$exported"; then ok "librerank.so exports only rr_* ($(wc -l <<<"$exported") symbols)"
else bad "librerank.so exports non-rr_ symbols: $(grep -v '^rr_' <<<"$exported" | head -5 | tr '\n' ' ')"; fi
if ldd "$BUILD/librerank.so" | grep -qE 'libmicrohttpd|libcurl'; then bad "librerank.so depends on libmicrohttpd/libcurl"
else ok "librerank.so depends on neither libmicrohttpd nor libcurl"; fi

# 4. both score the pairs as `rerank score` does, and the library prints nothing
if [ ! -d "$M" ]; then
    echo "skipped: no test model $M (tools/gen_models.py)"; skip=$((skip + 1))
else
    printf '%s\n' '{"query": "what is a panda?", "document": "The giant panda is a bear native to China."}' \
        '{"query": "what is a panda?", "document": "Paris is the capital of France."}' \
        '{"query": "capital of France", "document": "Paris is the capital of France."}' |
        "$BUILD/rerank" score -m "$M" --precision fp32 | sed -E 's/^\{"score": (.*)\}$/\1/' >"$tmp/want"
    for kind in static shared; do
        [ -x "$tmp/$kind" ] || continue
        : >"$tmp/$kind.out"
        "$tmp/$kind" "$M" "$tmp/$kind.out" >"$tmp/$kind.stdout" 2>"$tmp/$kind.stderr"; rc=$?
        if [ $rc -eq 0 ] && [ "$(head -n 3 "$tmp/$kind.out")" = "$(cat "$tmp/want")" ] && [ "$(wc -l <"$tmp/want")" -eq 3 ]; then
            ok "$kind: scores equal rerank score's ($(head -n 3 "$tmp/$kind.out" | tr '\n' ' '))"
        else bad "$kind: exit $rc, got $(tr '\n' ' ' <"$tmp/$kind.out"), want $(tr '\n' ' ' <"$tmp/want")"; fi
        if grep -q 'missing folder: .*rerank-model' "$tmp/$kind.out" && grep -q '^bad id: ' "$tmp/$kind.out"; then
            ok "$kind: failures come back as rr_errmsg() messages"
        else bad "$kind: failure messages missing: $(tail -n 3 "$tmp/$kind.out" | tr '\n' ' ')"; fi
        if [ ! -s "$tmp/$kind.stdout" ] && [ ! -s "$tmp/$kind.stderr" ]; then ok "$kind: the library wrote nothing to stdout or stderr"
        else bad "$kind: output appeared: $(head -c 300 "$tmp/$kind.stdout" "$tmp/$kind.stderr")"; fi
    done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
