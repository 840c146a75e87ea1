# A key broker in a TEE (cai kbs --tls attested): cai agent and cai serve
# --kbs check its attested TLS with the same verifier as cai proxy
# (--kbs-policy), receive the key, and refuse a broker the policy does not
# allow before sending it anything of the KBS protocol.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "SKIP ratls_kbs: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
ZERO=$(printf '0%.0s' $(seq 96))
printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"mr_td": ["%s"]}}, "resources": [{"path": "cai/*", "allow": ["td"]}]}\n' \
    "$ZERO" > kbs-policy.json
KBS=
trap 'kill $KBS $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
SERVER=

# The broker's database gets the model key over plain HTTP first (its admin
# client checks CAs, not attestation), then the broker restarts in the TEE.
kbs_start "" kbs-plain.log --db kbs.db --master-key master.key --insecure-http --admin-pub admin.pub \
    --policy kbs-policy.json --trust-sim sim
KP=$KPORT
"$CAI" seal m.gguf -o m.sealed --key-file m.key --new-key --key-id kbs:///cai/m/key >/dev/null
"$CAI" kbs admin --url "http://127.0.0.1:$KP" --key admin.key put cai/m/key m.key >/dev/null &&
    pass key_registered || fail key_registered "$(tail -3 kbs-plain.log)"
kill $KBS; wait $KBS 2>/dev/null
KBS_PORT=$KP KSCHEME=https KCURL=-k kbs_start "" kbs.log --db kbs.db --master-key master.key --tls attested \
    --tee sim --sim-dir sim --trust-sim sim
grep -q "listening on https://" kbs.log && grep -q "attested TLS: new certificate" kbs.log &&
    pass kbs_attested_tls_up || fail kbs_attested_tls_up "$(cat kbs.log)"
K=https://127.0.0.1:$KP

# What the agent requires of the broker: the sim TEE, this MRTD, no model.
printf '{"version": 1, "tee": ["sim"], "reference_values": {"kbs": {"mr_td": ["%s"], "model_digest": ["%s"]}}, "servers": ["kbs"]}\n' \
    "$ZERO" "$(printf '0%.0s' $(seq 64))" > broker.json
printf '{"version": 1, "tee": ["sim"], "reference_values": {"kbs": {"mr_td": ["%s"]}}, "servers": ["kbs"]}\n' \
    "$(printf '01%.0s' $(seq 48))" > other-broker.json

"$CAI" agent get-resource kbs:///cai/m/key --kbs "$K" --tee sim --sim-dir sim \
    --kbs-policy broker.json --kbs-trust-sim sim > got.key 2>agent.err && cmp -s got.key m.key &&
    pass agent_over_attested_tls || fail agent_over_attested_tls "$(cat agent.err)"
refuses agent_refuses_other_broker "claim mr_td" "$CAI" agent get-resource kbs:///cai/m/key --kbs "$K" \
    --tee sim --sim-dir sim --kbs-policy other-broker.json --kbs-trust-sim sim --attempts 1
refuses agent_without_policy_checks_cas "certificate|SSL" "$CAI" agent get-resource kbs:///cai/m/key \
    --kbs "$K" --tee sim --sim-dir sim --attempts 1
err=$("$CAI" agent get-resource kbs:///cai/m/key --kbs "http://127.0.0.1:$KP" --tee sim --sim-dir sim \
    --kbs-policy broker.json --kbs-trust-sim sim 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$err" | grep -q "https://" && pass kbs_policy_needs_https || fail kbs_policy_needs_https "exit $rc: $err"

# cai serve boots from the sealed model with the key from the attested broker.
SP=$(free_port)
"$CAI" serve --sealed m.sealed --kbs "$K" --kbs-policy broker.json --kbs-trust-sim sim --tee sim \
    --sim-dir sim --port "$SP" > serve.log 2>&1 &
SERVER=$!
wait_http "http://127.0.0.1:$SP/health" 60 && grep -q "received the key kbs:///cai/m/key" serve.log &&
    pass serve_boots_from_attested_broker || fail serve_boots_from_attested_broker "$(tail -5 serve.log)"
refuses serve_refuses_other_broker "claim mr_td" "$CAI" serve --sealed m.sealed --kbs "$K" \
    --kbs-policy other-broker.json --kbs-trust-sim sim --tee sim --sim-dir sim --port 0
finish
