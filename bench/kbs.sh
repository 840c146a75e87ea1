#!/usr/bin/env bash
# bench/kbs.sh - key releases per second and p50/p99 latency of `cai kbs`, with
# 1 and 32 concurrent agents using sim TDX quotes (all on this machine).
#
#   bench/kbs.sh [SECONDS] [CLIENTS]     (defaults: 5, 1,32)
#
# 'release': each agent attests once, then fetches the key again and again
# (token check, policy, SQLite read, JWE to the TEE key, audit record group-
# committed before the answer). 'rcar+release': every release is a whole
# handshake, as `cai agent` does (new key, auth, sim quote, DCAP verification,
# attest, fetch). Goal: >= 1,000 releases/s and p99 <= 20 ms on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
clients=${2:-1,32}
[ -x build/cai ] || make -j2 >/dev/null
cai=$PWD/build/cai
d=$(mktemp -d /tmp/cai-bench-kbs.XXXXXX)
trap 'kill $kbs 2>/dev/null; rm -rf "$d"' EXIT
cd "$d"
"$cai" attest sim-init sim >/dev/null
"$cai" kbs admin keygen -o admin >/dev/null
cat > policy.json <<'P'
{"version": 1, "tee": ["sim"], "tcb_status": ["UpToDate"], "reference_values": {"any": {}},
 "resources": [{"path": "cai/*", "allow": ["any"]}]}
P
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$cai" kbs --db kbs.db --master-key master.key --insecure-http --port "$port" --admin-pub admin.pub \
    --policy policy.json --trust-sim sim --rate 0 --log-level warn >/dev/null 2>kbs.log &
kbs=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/kbs/v0/x" && break; sleep 0.1; done
head -c 32 /dev/urandom > key.bin
"$cai" kbs admin --url "http://127.0.0.1:$port" --key admin.key put cai/bench/key key.bin >/dev/null
echo "cai kbs on $(nproc) cores; agents on the same machine; sim TDX quotes"
"$cai" bench kbs --kbs "http://127.0.0.1:$port" --sim-dir sim --path cai/bench/key \
    --seconds "$secs" --clients "$clients" 2>/dev/null
