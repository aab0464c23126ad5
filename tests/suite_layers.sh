#!/usr/bin/env bash
# suite_layers.sh -- keeps docs/ARCHITECTURE.md true: every `#include "..."` in src/ and include/
# follows the allowed edges of the layer table in docs/ARCHITECTURE.md (section "Layers"), which is
# the one place they are written. A row reads
#     | `src/NAME` | library | role | `dep` `dep.h` ... |
# where a dep is a folder below (it must have its own row earlier in the table, so the layers form a
# chain with no cycle) or a public header of include/. A folder may include its own files and,
# transitively, whatever its deps may include. Files in include/ may include only include/.
#
#   tests/suite_layers.sh              check this tree, then the self-test
#   tests/suite_layers.sh --check DIR  check the tree at DIR only (exit 1 on a violation)
set -u

check() { # root -> prints violations, exit status 1 if any
    local root=$1 doc=$1/docs/ARCHITECTURE.md
    [ -f "$doc" ] || { echo "no $doc"; return 1; }
    awk -v root="$root" '
    function err(m) { print "FAIL " m; bad = 1 }
    FNR == 1 { file_no++ }
    file_no == 1 && /^## Layers/ { in_layers = 1; next }
    file_no == 1 && /^## / { in_layers = 0 }
    file_no == 1 && in_layers && /^\| *`src\/[a-z_]+`/ {
        n = split($0, col, "|")
        match(col[2], /src\/[a-z_]+/); f = substr(col[2], RSTART + 4, RLENGTH - 4)
        order[f] = ++rows; names[rows] = f
        deps = col[n - 1]
        while (match(deps, /`[^`]+`/)) {
            d = substr(deps, RSTART + 1, RLENGTH - 2); deps = substr(deps, RSTART + RLENGTH)
            if (d ~ /\.h$/) allow[f, d] = 1
            else if (!(d in order)) err(sprintf("ARCHITECTURE.md: `src/%s` may include `%s`, which has no row above it", f, d))
            else {
                allow[f, d] = 1
                m = 0
                for (k in allow) { split(k, kk, SUBSEP); if (kk[1] == d) add[++m] = kk[2] }
                for (i = 1; i <= m; i++) allow[f, add[i]] = 1
            }
        }
        next
    }
    file_no == 2 {
        # one line per include: FILE<TAB>TARGET
        split($0, p, "\t"); file = p[1]; tgt = p[2]
        sub("^" root "/", "", file)
        checked[file] = 1
        if (file ~ /^include\//) {
            if (tgt ~ /\// || system("test -f \"" root "/include/" tgt "\"") != 0) err(file " includes \"" tgt "\": public headers include only public headers")
            next
        }
        split(file, fp, "/"); from = fp[2]
        if (!(from in order)) { err(file ": folder src/" from " has no row in the layer table"); next }
        if (tgt ~ /\//) { split(tgt, tp, "/"); to = tp[1] } else if (system("test -f \"" root "/include/" tgt "\"") == 0) to = tgt; else to = from
        if (to == from || allow[from, to]) next
        err(file " includes \"" tgt "\": src/" from " may not include " to)
        bad_files[file] = 1
    }
    END {
        if (rows == 0) err("ARCHITECTURE.md: no layer table found")
        nf = 0; for (k in checked) nf++
        printf "checked %d files against %d layers\n", nf, rows
        exit bad
    }' "$doc" <(grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root"/src/*/*.[ch] "$root"/include/*.h |
                sed -E 's/^([^:]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1\t\2/')
}

if [ "${1:-}" = --check ]; then check "$2"; exit; fi

pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

out=$(check .); rc=$?
echo "$out"
if [ $rc -eq 0 ]; then ok "every #include follows docs/ARCHITECTURE.md's layer table"; else bad "layering violations above"; fi

# Self-test: on a copy of the tree, each injected forbidden include must be caught, and the clean
# copy must pass (so a failure comes from the injection, not from the copy).
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r src include docs "$tmp"/
if check "$tmp" >/dev/null; then ok "self-test: the clean copy passes"; else bad "self-test: the clean copy fails"; fi
inject() { # name file line
    rm -rf "$tmp/t"; mkdir "$tmp/t"; cp -r src include docs "$tmp/t"/
    sed -i "1a $3" "$tmp/t/$2"
    if check "$tmp/t" >/dev/null; then bad "self-test: $1 was not caught"; else ok "self-test: $1 is caught"; fi
}
inject "a layer including one above it (score -> server)" src/score/rank.c '#include "server/request.h"'
inject "a lower layer including an upper one (model -> encoder)" src/model/model.c '#include "encoder/encoder.h"'
inject "the core library including a server header" src/kernels/linear.c '#include "rerank_server.h"'
inject "the CLI reaching past the public headers" src/cli/main.c '#include "core/core.h"'
inject "a public header including an internal one" include/rerank.h '#include "core/core.h"'
inject "two side-by-side modules (hub -> eval)" src/hub/names.c '#include "rerank_eval.h"'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
