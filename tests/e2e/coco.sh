# cai serve as a Confidential Containers pod's container (--tee coco): its
# quotes from the guest components' attestation agent, the model key from
# their confidential data hub (--key-from-cdh). The guest components are a
# stand-in of their REST API (coco_api.py) over the simulated TEE and a real
# cai kbs. Then the refusal table: each row asserts serve refuses, naming
# the check that failed.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "SKIP coco: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
DIGEST=$(sha m.gguf)
ZERO=$(printf '0%.0s' $(seq 96))
PIDS=""
curl() { command curl --max-time 60 "$@"; }
trap 'kill $PIDS 2>/dev/null; wait $PIDS 2>/dev/null; rm -rf "$T"' EXIT

# The broker (SQLite) with the sealed model's key, and a 16-byte "key".
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"mr_td": ["%s"]}}, "resources": [{"path": "cai/*", "allow": ["td"]}]}\n' \
    "$ZERO" > kbs-policy.json
KP=$(free_port)
"$CAI" kbs --db kbs.db --master-key master.key --port "$KP" --insecure-http --admin-pub admin.pub \
    --policy kbs-policy.json --trust-sim sim > kbs.log 2>&1 &
PIDS="$PIDS $!"
K=http://127.0.0.1:$KP
for _ in $(seq 1 100); do curl -s -o /dev/null "$K/kbs/v0/x" && break; sleep 0.1; done
"$CAI" seal m.gguf -o m.sealed --key-file m.key --new-key --key-id kbs:///cai/m/key >/dev/null
"$CAI" seal m.gguf -o missing.sealed --key-file m.key --key-id kbs:///cai/missing/key >/dev/null
"$CAI" seal m.gguf -o short.sealed --key-file m.key --key-id kbs:///cai/short/key >/dev/null
head -c 16 m.key > short.key
"$CAI" kbs admin --url "$K" --key admin.key put cai/m/key m.key >/dev/null &&
    "$CAI" kbs admin --url "$K" --key admin.key put cai/short/key short.key >/dev/null &&
    pass key_registered || fail key_registered "$(tail -3 kbs.log)"

# api NAME ARGS...: a stand-in of the guest components' REST API; sets API_NAME.
api() {
    local name="$1"; shift
    python3 "$ROOT/tests/e2e/coco_api.py" --port-file "port-$name" --cai "$CAI" --sim sim \
        --kbs "$K" "$@" 2> "api-$name.log" &
    PIDS="$PIDS $!"
    for _ in $(seq 1 100); do [ -s "port-$name" ] && break; sleep 0.1; done
    eval "API_$name=http://127.0.0.1:$(cat "port-$name")"
}
api main

# The pod: quotes and the key from the guest components, attested TLS.
SP=$(free_port)
"$CAI" serve --sealed m.sealed --key-from-cdh --tee coco --coco-api "$API_main" --tls attested \
    --model-id qwen --port "$SP" > serve.log 2>&1 &
SERVER=$!
PIDS="$PIDS $SERVER"
wait_http "https://127.0.0.1:$SP/health" 30 -k && pass serve_up || fail serve_up "$(cat serve.log)"
grep -q "received the key kbs:///cai/m/key from the confidential data hub at $API_main" serve.log &&
    pass key_from_cdh || fail key_from_cdh "$(cat serve.log)"
grep -q "attested TLS: new certificate" serve.log && grep -q "GET /aa/evidence?runtime_data=" api-main.log &&
    grep -q "encoding=base64" api-main.log && pass quote_from_attestation_agent ||
    fail quote_from_attestation_agent "$(cat serve.log api-main.log)"
KEYHEX=$(od -An -tx1 m.key | tr -d ' \n')
grep -qi "$KEYHEX" serve.log api-main.log && fail key_not_logged "$(cat serve.log)" || pass key_not_logged

# A client verifies the pod's attested TLS (the sim TEE, the model digest)
# through cai proxy and gets a completion.
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"mr_td": ["%s"], "model_digest": ["%s"]}}, "servers": ["td"]}\n' \
    "$ZERO" "$DIGEST" > good.json
PP=$(free_port)
"$CAI" proxy --listen "127.0.0.1:$PP" --policy good.json --trust-sim sim > proxy.log 2>&1 &
PIDS="$PIDS $!"
wait_http "http://127.0.0.1:$PP/.cai/proxy" 10
out=$(http_proxy=http://127.0.0.1:$PP curl -s "http://127.0.0.1:$SP/v1/chat/completions" \
    -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8, "seed": 1}')
echo "$out" | grep -q '"object":"chat.completion"' && grep -q "verified https://127.0.0.1:$SP" proxy.log &&
    grep -q "model sha256:$DIGEST" proxy.log && pass attested_tls_completion ||
    fail attested_tls_completion "$out $(cat proxy.log)"

# /v1/attestation: evidence from the attestation agent, binding the nonce.
out=$(curl -sk "https://127.0.0.1:$SP/v1/attestation?nonce=00112233445566778899aabbccddeeff")
echo "$out" | grep -q '"tee":"coco"' && echo "$out" | grep -q '"nonce":"00112233445566778899aabbccddeeff"' &&
    pass attestation_endpoint || fail attestation_endpoint "$out"

# The KBS protocol with the attestation agent's evidence: cai agent, and
# cai serve --kbs (no data hub).
"$CAI" agent get-resource kbs:///cai/m/key --kbs "$K" --tee coco --coco-api "$API_main" \
    > got.key 2> agent.err && cmp -s got.key m.key && pass agent_kbs_protocol ||
    fail agent_kbs_protocol "$(cat agent.err)"
SP2=$(free_port)
"$CAI" serve --sealed m.sealed --kbs "$K" --tee coco --coco-api "$API_main" --port "$SP2" > serve-kbs.log 2>&1 &
PIDS="$PIDS $!"
wait_http "http://127.0.0.1:$SP2/health" 60 && grep -q "attested to $K (coco) and received the key" serve-kbs.log &&
    pass serve_kbs_protocol || fail serve_kbs_protocol "$(cat serve-kbs.log)"

# Refusals: serve exits 1 before serving, naming the check (a regression
# that serves instead is stopped by timeout: exit 124, a failure).
api malformed --evidence malformed
api other --evidence other-reportdata
api nocdh --cdh off
DOWN=http://127.0.0.1:$(free_port)
refuses refuses_api_down "CoCo API unreachable at $DOWN" timeout 60 "$CAI" serve --sealed m.sealed \
    --key-from-cdh --tee coco --coco-api "$DOWN" --tls attested --port 0
refuses refuses_malformed_evidence "CoCo evidence: malformed JSON" timeout 60 "$CAI" serve --sealed m.sealed \
    --key-from-cdh --tee coco --coco-api "$API_malformed" --tls attested --port 0
refuses refuses_other_reportdata "CoCo evidence: REPORTDATA: the quote's REPORTDATA is not the one asked for" \
    timeout 60 "$CAI" serve --sealed m.sealed --key-from-cdh --tee coco --coco-api "$API_other" --tls attested --port 0
refuses refuses_cdh_feature_off "confidential data hub: GET /cdh/resource/cai/m/key answered HTTP 404: Resource Feature Not Enabled" \
    timeout 60 "$CAI" serve --sealed m.sealed --key-from-cdh --tee coco --coco-api "$API_nocdh" --port 0
refuses refuses_cdh_resource_missing "confidential data hub: GET /cdh/resource/cai/missing/key answered HTTP 500" \
    timeout 60 "$CAI" serve --sealed missing.sealed --key-from-cdh --tee coco --coco-api "$API_main" --port 0
refuses refuses_wrong_key_length "confidential data hub released 16 bytes for kbs:///cai/short/key, not a 256-bit key" \
    timeout 60 "$CAI" serve --sealed short.sealed --key-from-cdh --tee coco --coco-api "$API_main" --port 0
refuses agent_refuses_other_reportdata "CoCo evidence: REPORTDATA" timeout 60 "$CAI" agent get-resource kbs:///cai/m/key \
    --kbs "$K" --tee coco --coco-api "$API_other" --attempts 1

# Usage errors (exit 2): the API off loopback, the data hub without CoCo.
err=$("$CAI" serve --sealed m.sealed --key-from-cdh --tee coco --coco-api http://10.0.0.1:8006 --port 0 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$err" | grep -q "not a loopback address" && pass coco_api_loopback_only ||
    fail coco_api_loopback_only "exit $rc: $err"
err=$("$CAI" serve --sealed m.sealed --key-from-cdh --tee sim --sim-dir sim --port 0 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$err" | grep -q "key-from-cdh needs --tee coco" && pass key_from_cdh_needs_coco ||
    fail key_from_cdh_needs_coco "exit $rc: $err"
# The pod's server stops cleanly (and, under ASan, without a report).
kill -TERM $SERVER
wait $SERVER
rc=$?
[ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' serve.log && pass clean_shutdown ||
    fail clean_shutdown "exit $rc: $(grep -E -A5 'Sanitizer|runtime error' serve.log | head -20)"
finish
