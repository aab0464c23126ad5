#!/usr/bin/env bash
# suite_install.sh -- `make install` / `make uninstall` as a C library installs: into a temporary
# PREFIX, then a small C program built only with `pkg-config --cflags --libs rerank` (shared) and
# `pkg-config --static --cflags --libs rerank` against librerank.a scores pairs like `rerank score`;
# the installed program and man page work; DESTDIR stages the same tree under itself; uninstall
# leaves no file behind.
set -u
BUILD=${RR_BUILD:-build}
case "$BUILD" in *asan*|*tsan*|*fuzz*)
    echo "skipped under the sanitizers: installed sanitizer-built libraries would need the sanitizer runtime in every program built against them; the install checks are about the plain build"
    echo "0 passed, 0 failed, 1 skipped"; exit 0 ;;
esac
TD=${RR_TESTDATA:-build/testdata}
M=$TD/models/jina_f32
CC=${CC:-cc}
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

command -v pkg-config >/dev/null || { echo "skipped: pkg-config not installed"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
P=$tmp/prefix
if make -s install BUILD="$BUILD" PREFIX="$P" >"$tmp/install.log" 2>&1; then ok "make install PREFIX=$P"
else bad "make install: $(tail -n 5 "$tmp/install.log")"; echo "$pass passed, $fail failed, $skip skipped"; exit 1; fi

want="bin/rerank lib/librerank.a lib/librerank.so lib/librerank.so.0 lib/librerank_server.a lib/librerank_hub.a
lib/librerank_eval.a include/rerank.h include/rerank_util.h include/rerank_server.h include/rerank_hub.h
include/rerank_eval.h lib/pkgconfig/rerank.pc lib/pkgconfig/rerank-server.pc lib/pkgconfig/rerank-hub.pc
lib/pkgconfig/rerank-eval.pc share/man/man1/rerank.1"
missing=""; for f in $want; do [ -e "$P/$f" ] || missing="$missing $f"; done
if [ -z "$missing" ]; then ok "installed: program, static and shared libraries, headers, pkg-config files, man page"
else bad "not installed:$missing"; fi
if [ "$("$P/bin/rerank" --help 2>&1 | head -n 1 | cut -d' ' -f1-2)" = "rerank $(sed -n 's/^#define RR_VERSION "\(.*\)"/\1/p' include/rerank.h)" ]; then
    ok "the installed rerank runs"; else bad "installed rerank --help: $("$P/bin/rerank" --help 2>&1 | head -n 1)"; fi
if command -v man >/dev/null; then
    if MANPATH="$P/share/man" man -P cat rerank 2>/dev/null | grep -q 'rerank score'; then ok "man rerank finds the installed page"
    else bad "man rerank with MANPATH=$P/share/man"; fi
else echo "skip man: not installed"; skip=$((skip + 1)); fi

export PKG_CONFIG_PATH=$P/lib/pkgconfig
if [ "$(pkg-config --modversion rerank 2>&1)" = "$(sed -n 's/^#define RR_VERSION "\(.*\)"/\1/p' include/rerank.h)" ]; then ok "pkg-config --modversion rerank"
else bad "pkg-config rerank: $(pkg-config --modversion rerank 2>&1)"; fi
# the program is compiled outside the source tree, so only the installed headers can be found
cp tests/progs/corelib_score.c "$tmp/prog.c"
if (cd "$tmp" && $CC prog.c $(pkg-config --cflags --libs rerank) -Wl,-rpath,"$P/lib" -o shared 2>cc.log); then
    ok "cc prog.c \$(pkg-config --cflags --libs rerank) (shared)"
else bad "shared build: $(head -n 5 "$tmp/cc.log")"; fi
static_libs=$(pkg-config --static --libs rerank | sed 's/-lrerank\b/-l:librerank.a/')
if (cd "$tmp" && $CC prog.c $(pkg-config --cflags rerank) $static_libs -o static 2>cc2.log); then
    ok "cc prog.c \$(pkg-config --static --cflags --libs rerank) with librerank.a"
else bad "static build: $(head -n 5 "$tmp/cc2.log")"; fi
[ -x "$tmp/shared" ] && { ldd "$tmp/shared" | grep -q "$P/lib/librerank.so.0" && ok "the shared program loads the installed librerank.so.0" || bad "ldd: $(ldd "$tmp/shared" | grep rerank)"; }
[ -x "$tmp/static" ] && { ldd "$tmp/static" | grep -q librerank && bad "the static program loads a librerank.so" || ok "the static program carries librerank.a"; }
if [ -d "$M" ]; then
    printf '%s\n' '{"query": "what is a panda?", "document": "The giant panda is a bear native to China."}' \
        '{"query": "what is a panda?", "document": "Paris is the capital of France."}' \
        '{"query": "capital of France", "document": "Paris is the capital of France."}' |
        "$P/bin/rerank" score -m "$M" --precision fp32 | sed -E 's/^\{"score": (.*)\}$/\1/' >"$tmp/want"
    for kind in shared static; do
        [ -x "$tmp/$kind" ] || continue
        : >"$tmp/$kind.out"
        if "$tmp/$kind" "$M" "$tmp/$kind.out" && [ "$(head -n 3 "$tmp/$kind.out")" = "$(cat "$tmp/want")" ]; then
            ok "$kind program scores pairs as the installed rerank does ($(head -n 3 "$tmp/$kind.out" | tr '\n' ' '))"
        else bad "$kind program: $(tr '\n' ' ' <"$tmp/$kind.out") vs $(tr '\n' ' ' <"$tmp/want")"; fi
    done
else echo "skip scoring: no test model $M"; skip=$((skip + 1)); fi

# an upper layer through its own pkg-config file
cat >"$tmp/hub.c" <<'C'
#include <rerank_hub.h>
#include <stdio.h>
int main(void) { char d[4096]; return rr_hub_resolve("not a repo id!", false, d, sizeof d) == RR_ERR_INVALID ? 0 : 1; }
C
if (cd "$tmp" && $CC hub.c $(pkg-config --cflags --libs rerank-hub) -Wl,-rpath,"$P/lib" -o hub 2>cc3.log) && "$tmp/hub"; then
    ok "a program built with pkg-config rerank-hub links the hub layer"
else bad "rerank-hub: $(head -n 5 "$tmp/cc3.log")"; fi

if make -s uninstall BUILD="$BUILD" PREFIX="$P" >"$tmp/un.log" 2>&1 && [ -z "$(find "$P" -type f -o -type l)" ]; then
    ok "make uninstall removes every installed file"
else bad "after uninstall: $(find "$P" -type f -o -type l | head -5 | tr '\n' ' ')"; fi
D=$tmp/stage
if make -s install BUILD="$BUILD" PREFIX=/usr DESTDIR="$D" >/dev/null 2>&1 && [ -x "$D/usr/bin/rerank" ] &&
    grep -q '^prefix=/usr$' "$D/usr/lib/pkgconfig/rerank.pc" && [ -f "$D/usr/share/man/man1/rerank.1" ] &&
    make -s uninstall BUILD="$BUILD" PREFIX=/usr DESTDIR="$D" >/dev/null 2>&1 && [ -z "$(find "$D" -type f -o -type l)" ]; then
    ok "DESTDIR=... PREFIX=/usr stages under DESTDIR (rerank.pc says prefix=/usr) and uninstalls from it"
else bad "DESTDIR staging"; fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
