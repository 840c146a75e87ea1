# The web chat in real Chromium (tests/e2e/web_chat.mjs) against cai serve
# --tee sim; screenshots go to BUILD/test-artifacts/. ./run setup installs
# Debian's chromium: without it this test says SKIP (FAIL when $CI is set),
# never PASS.
. "$(dirname "$0")/lib.sh"
cd "$T"

if [ ! -x /usr/bin/chromium ]; then
    if [ -n "${CI:-}" ]; then # in CI ./run setup installed it: its absence is a failure
        echo "FAIL web_chat: /usr/bin/chromium absent in CI (./run setup installs Debian's chromium)"
        exit 1
    fi
    echo "SKIP web_chat: /usr/bin/chromium absent (./run setup installs Debian's chromium)"
    exit 0
fi
if [ ! -f "$ROOT/node_modules/playwright-core/package.json" ]; then
    echo "SKIP web_chat: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null
start_serve web_chat --tee sim --sim-dir sim --ctx 4096 && pass health_200 || fail health_200 "$(cat serve.log)"
# The same model over attested TLS, with cai proxy in mapping mode in front.
TPORT=$(free_port) PPORT=$(free_port)
"$CAI" serve -m m.gguf --port "$TPORT" --tee sim --sim-dir sim --tls attested > serve-tls.log 2>&1 &
TLS_SERVER=$!
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"model_digest": ["%s"]}}, "servers": ["td"]}\n' \
    "$(sha m.gguf)" > client-policy.json
"$CAI" proxy --policy client-policy.json --trust-sim sim --listen "127.0.0.1:$PPORT" \
    --to "https://127.0.0.1:$TPORT" > proxy.log 2>&1 &
PROXY=$!
trap 'kill $SERVER $TLS_SERVER $PROXY 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 300); do curl -sfk "https://127.0.0.1:$TPORT/health" >/dev/null && break; sleep 0.1; done
wait_http "http://127.0.0.1:$PPORT/.cai/proxy" 10 || fail proxy_up "$(cat proxy.log)"
ART="$(cd "$(dirname "$CAI")" && pwd)/test-artifacts"
node "$ROOT/tests/e2e/web_chat.mjs" "$U" "$(sha m.gguf)" "$ART" "http://127.0.0.1:$PPORT" 2>&1 || echo "FAIL web_chat: exit $?"
[ -s "$ART/web_chat.png" ] && pass "web_chat_screenshot ($ART/web_chat.png)" || fail web_chat_screenshot "none in $ART"
stop_serve
finish
