#!/usr/bin/env bash
# tests/run.sh - run every test suite and print "N passed, N failed" last.
#
#   tests/run.sh [--builds "build build-asan"] [--fuzz-seconds N] [FILTER]
#
# For each build directory: the unit test binaries (BUILD/tests/test_*), then
# the end-to-end scripts (tests/e2e/*.sh) against BUILD/cai. Then the include
# graph check (tools/include_graph.py) and the known-answer vectors. Then each
# libFuzzer target in build-fuzz/ for a short run on its committed corpus.
# Every "PASS x"/"FAIL x" line counts; a suite that exits non-zero without
# printing a FAIL line counts as one failure (a crash).
set -u
cd "$(dirname "$0")/.."
builds="build build-asan"
fuzz_seconds=10
filter=""
while [ $# -gt 0 ]; do
    case "$1" in
    --builds) builds="$2"; shift 2 ;;
    --fuzz-seconds) fuzz_seconds="$2"; shift 2 ;;
    *) filter="$1"; shift ;;
    esac
done

passed=0 failed=0 skipped=0
logdir=$(mktemp -d /tmp/cai-tests.XXXXXX)

run_suite() { # name, command...
    local name="$1"; shift
    local log="$logdir/$(echo "$name" | tr '/ ' '__').log"
    "$@" >"$log" 2>&1
    local rc=$?
    local p f s
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "FAIL $name: exited with status $rc" >>"$log"
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$f" -gt 0 ]; then
        echo "FAIL $name ($p passed, $f failed)"
        grep -v '^PASS ' "$log" | tail -n 40 | sed 's/^/    /'
    else
        [ "$s" -gt 0 ] && p="$p passed, $s skipped" || p="$p passed"
        echo "ok   $name ($p)"
    fi
}

for b in $builds; do
    [ -x "$b/cai" ] || { echo "FAIL $b: $b/cai is not built"; failed=$((failed + 1)); continue; }
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        run_suite "$b/$(basename "$t")" "$t"
    done
    for t in tests/e2e/*.sh; do
        [ "$(basename "$t")" = lib.sh ] && continue
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        run_suite "$b/e2e/$(basename "$t" .sh)" env CAI="$PWD/$b/cai" bash "$t"
    done
done

# The include graph of src/ against the layer rule in docs/ARCHITECTURE.md.
case "include_graph" in *"$filter"*)
    run_suite "tools/include_graph.py" bash -c "python3 tools/include_graph.py && echo 'PASS include_graph'" ;;
esac

# No function over 120 lines without its reason (docs/ARCHITECTURE.md).
case "func_length" in *"$filter"*)
    run_suite "tools/func_length.py" bash -c "python3 tools/func_length.py && echo 'PASS func_length'" ;;
esac

# The known-answer vectors, checked by an independent implementation.
case "vectors" in *"$filter"*)
    run_suite "vectors/check_header.py" python3 tests/vectors/check_header.py tests/vectors/seal-v1.txt
    run_suite "vectors/check_kbs.py" python3 tests/vectors/check_kbs.py tests/vectors/kbs ;;
esac

if [ "$fuzz_seconds" -gt 0 ] && [ -d build-fuzz ]; then
    for f in build-fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        name=$(basename "$f")
        case "$name" in *"$filter"*) ;; *) continue ;; esac
        corpus="tests/fuzz/corpus/${name#fuzz_}"
        work=$(mktemp -d /tmp/cai-fuzz.XXXXXX)
        [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
        run_suite "fuzz/$name" bash -c "'$f' -max_total_time=$fuzz_seconds -max_len=65536 -rss_limit_mb=2048 '$work' && echo 'PASS $name ${fuzz_seconds}s without a crash'"
        rm -rf "$work"
    done
fi

echo "logs: $logdir"
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
