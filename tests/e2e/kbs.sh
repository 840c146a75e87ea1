# cai kbs + cai agent + cai seal --kbs, end to end with real processes: the
# broker on a free port with a fresh SQLite file, keys registered by cai seal,
# fetched by cai agent under the simulated TEE, every refusal, an independent
# client (node: jose, canonicalize), HTTPS, and kill -9 durability.
. "$(dirname "$0")/lib.sh"
cd "$T"

MRTD=$(printf 'a1%.0s' $(seq 48))
RT2=$(printf 'b2%.0s' $(seq 48))
"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
"$CAI" kbs admin keygen -o intruder >/dev/null
# CoCo pods: the init-data they were launched with (Trustee's own fixture,
# tests/vectors/kbs/trustee) pinned by its digest (= MRCONFIGID) and one of
# its entries by its own SHA-256 (docs/KBS-PROTOCOL.md, init-data).
INITDATA=$(sha256sum < "$ROOT/tests/vectors/kbs/trustee/init-data-simple.toml" | cut -c1-64)$(printf '0%.0s' $(seq 32))
AA_SHA=$(printf '[token_configs]\n[token_configs.kbs]\nurl = "http://1.2.3.4:8080"\n' | sha256sum | cut -c1-64)
cat > policy.json <<EOF
{"version": 1, "tee": ["sim"], "tcb_status": ["UpToDate"],
 "reference_values": {"prod": {"mr_td": ["$MRTD"], "rtmr_2": ["$RT2"]}, "any": {},
                      "pod": {"init_data": ["$INITDATA"], "init_data_digests.aa.toml": ["$AA_SHA"]}},
 "resources": [{"path": "cai/*", "allow": ["prod"]}, {"path": "dur/*", "allow": ["any"]},
               {"path": "pub/*", "allow": ["any"]}, {"path": "coco/*", "allow": ["pod"]}]}
EOF
sed 's/"tee": \["sim"\]/"tee": ["tdx"]/' policy.json > policy-no-sim.json
sed 's/"UpToDate"/"OutOfDate"/' policy.json > policy-outofdate.json

# start_kbs LOG ARGS...: a broker on a free port (sets KPORT, K, KBS).
start_kbs() {
    local log="$1"; shift
    kbs_start "" "$log" --db kbs.db --master-key master.key --admin-pub admin.pub --trust-sim sim --rate 0 "$@"
}
trap 'kill -9 $KBS 2>/dev/null; rm -rf "$T"' EXIT
# The independent client needs node and the npm modules ./run setup installs:
# without them the checks that use it cannot run, which is a failure.
have_node() {
    [ -d "$ROOT/node_modules/jose" ] && [ -d "$ROOT/node_modules/canonicalize" ] &&
        command -v node >/dev/null && return 0
    fail "$1" "node or node_modules/jose absent: run ./run setup"
    return 1
}
kbs_node() { CAI="$CAI" SIM=sim ADMIN_KEY=admin.key node "$ROOT/tests/e2e/kbs_client.mjs" "$@"; }
err=$("$CAI" kbs --db x.db --master-key m.key 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$err" | grep -q insecure-http && [ ! -e x.db ] && pass plain_http_needs_flag || fail plain_http_needs_flag "rc $rc: $err"

start_kbs kbs.log --insecure-http --policy policy.json
[ -f kbs.db ] && [ "$(stat -c %a master.key)" = 600 ] && pass fresh_db_and_master_key || fail fresh_db_and_master_key "$(ls -l)"

# The model owner seals a model and registers its key in one step.
head -c 300000 /dev/urandom > model.bin
check seal_registers_key "$CAI" seal model.bin -o model.cai --kbs "$K" --admin-key admin.key --key-id kbs:///cai/model/key
refuses seal_refuses_registered_id "already holds a key at cai/model/key" "$CAI" seal model.bin -o model2.cai --kbs "$K" --admin-key admin.key --key-id kbs:///cai/model/key --key-file model2.key --new-key
[ ! -e model2.cai ] && [ ! -e model2.key ] && pass seal_refusal_writes_nothing || fail seal_refusal_writes_nothing "$(ls model2.*)"
# The broker's create-only write (If-None-Match: *): 409 where a value is,
# which stays (agent_key_unseals_model below fetches the first key).
TOK=$("$CAI" kbs admin token --key admin.key)
code=$(curl -s -o resp.json -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK" -H 'If-None-Match: *' --data-binary @model.bin "$K/kbs/v0/resource/cai/model/key")
[ "$code" = 409 ] && grep -q '/errors/ResourceExists"' resp.json && pass admin_create_only_conflict || fail admin_create_only_conflict "$code $(cat resp.json)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK" -H 'If-None-Match: *' --data-binary @model.bin "$K/kbs/v0/resource/cai/created/key")
code2=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK" -H 'If-None-Match: "x"' --data-binary @model.bin "$K/kbs/v0/resource/cai/created/key")
[ "$code" = 200 ] && [ "$code2" = 400 ] && pass admin_create_only_new_path || fail admin_create_only_new_path "$code $code2"
# Two seals racing for one key id: one registers its key, the other is
# refused and leaves nothing; the key the broker holds opens the winner's file.
for i in 1 2; do
    "$CAI" seal model.bin -o race$i.cai --kbs "$K" --admin-key admin.key --key-id kbs:///cai/race/key > race$i.out 2>&1 &
    eval "RACE$i=\$!"
done
wait $RACE1; r1=$?
wait $RACE2; r2=$?
[ "$((r1 + r2))" = 1 ] && [ "$(ls race?.cai | wc -l)" = 1 ] && grep -q "already holds" race?.out &&
    pass seal_race_one_winner || fail seal_race_one_winner "exit $r1 $r2: $(cat race?.out)"
"$CAI" kbs admin --url "$K" --key admin.key list | grep -q '"cai/model/key"' && pass admin_list || fail admin_list "not listed"

# The TEE fetches the key with the agent and opens the sealed model.
agent() { "$CAI" agent get-resource "$@" --kbs "$K" --tee sim --sim-dir sim; }
if agent kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" > key.bin 2> agent.err; then
    chmod 600 key.bin
    [ "$(stat -c %s key.bin)" = 32 ] && "$CAI" unseal model.cai --key-file key.bin -o out.bin >/dev/null &&
        cmp -s model.bin out.bin && pass agent_key_unseals_model || fail agent_key_unseals_model "key or model differ"
else
    fail agent_key_unseals_model "$(cat agent.err)"
fi
agent kbs:///cai/race/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" > race.key 2>/dev/null && chmod 600 race.key &&
    "$CAI" unseal race?.cai --key-file race.key -o race.bin >/dev/null && cmp -s model.bin race.bin &&
    pass seal_race_winner_key_unseals || fail seal_race_winner_key_unseals "the broker's key does not open $(ls race?.cai)"
agent kbs:///cai/model/key --rsa --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" 2>/dev/null | cmp -s - key.bin &&
    pass agent_rsa_oaep_256 || fail agent_rsa_oaep_256 "differs"

# Network errors are retried with backoff: an agent started before its broker
# gets the key once the broker is up. Refusals are not retried.
RPORT=$(free_port)
"$CAI" agent get-resource kbs:///cai/model/key --kbs "http://127.0.0.1:$RPORT" --tee sim --sim-dir sim \
    --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" > retry.bin 2> retry.err &
AG=$!
sleep 1
"$CAI" kbs --db kbs.db --master-key master.key --port "$RPORT" --insecure-http --trust-sim sim >> kbs.log 2>&1 &
KBS2=$!
wait $AG
cmp -s retry.bin key.bin && grep -q "retrying in" retry.err && pass agent_retries_network_errors ||
    fail agent_retries_network_errors "$(cat retry.err)"
kill -TERM $KBS2; wait $KBS2

# The answer to the attestation lost after the broker took the nonce: libcurl
# sends the request again and the broker says the nonce was used. The agent
# starts a new handshake instead of giving up.
DPORT=$(free_port)
python3 "$ROOT/tests/e2e/drop_answer.py" "$DPORT" "$KPORT" > drop.log 2>&1 &
DROP=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$DPORT/kbs/v0/x" && break; sleep 0.1; done
"$CAI" agent get-resource kbs:///cai/model/key --kbs "http://127.0.0.1:$DPORT" --tee sim --sim-dir sim \
    --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" --attempts 3 > resend.bin 2> resend.err
grep -q "dropped the attest answer" drop.log && cmp -s resend.bin key.bin && pass agent_new_handshake_after_lost_answer ||
    fail agent_new_handshake_after_lost_answer "$(cat drop.log resend.err)"
kill $DROP 2>/dev/null; wait $DROP 2>/dev/null

# Refusals: each a clear error, nothing on stdout.
refused() { # NAME PATTERN AGENT-ARGS...
    local name="$1" pat="$2"; shift 2
    local err rc
    err=$(agent "$@" 2>&1 > got.bin); rc=$?
    if [ "$rc" = 1 ] && [ ! -s got.bin ] && echo "$err" | grep -qE "$pat" && ! echo "$err" | grep -q "retrying"; then
        pass "$name"
    else
        fail "$name" "rc $rc: $err"
    fi
}
WRONG=$(printf 'c3%.0s' $(seq 48))
refused refuse_wrong_mrtd "403 PolicyDeny.*claim mr_td" kbs:///cai/model/key --sim-mrtd "$WRONG" --sim-rtmr 2="$RT2"
refused refuse_wrong_rtmr "403 PolicyDeny.*claim rtmr_2" kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$WRONG"
refused refuse_debug_td "401 AttestationError.*debug" kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" --sim-debug
refused refuse_path_not_granted "403 PolicyDeny.*no policy rule" kbs:///other/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2"
refused refuse_unknown_resource "404 ResourceNotFound" kbs:///cai/nothing/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2"
"$CAI" kbs admin --url "$K" --key admin.key policy set policy-outofdate.json >/dev/null
refused refuse_tcb_status_not_allowed "claim tcb_status = UpToDate is not allowed" kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2"
"$CAI" kbs admin --url "$K" --key admin.key policy set policy-no-sim.json >/dev/null
refused refuse_sim_not_in_policy "claim tee = sim is not trusted" kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2"
check admin_policy_set "$CAI" kbs admin --url "$K" --key admin.key policy set policy.json
"$CAI" kbs admin --url "$K" --key admin.key policy get | grep -q '"prod"' && pass admin_policy_get || fail admin_policy_get "policy not returned"
refuses admin_bad_policy_refused "Failed to parse policy" "$CAI" kbs admin --url "$K" --key admin.key policy set model.bin
refuses admin_other_key_refused "401.*signature" "$CAI" kbs admin --url "$K" --key intruder.key list
EXPIRED=$("$CAI" kbs admin token --key admin.key --ttl -120)
code=$(curl -s -o resp.json -w '%{http_code}' -H "Authorization: Bearer $EXPIRED" "$K/kbs/v0/resource")
[ "$code" = 401 ] && grep -q expired resp.json && pass admin_expired_token_refused || fail admin_expired_token_refused "$code $(cat resp.json)"
code=$(curl -s -o resp.json -w '%{http_code}' -X POST --data-binary @model.bin "$K/kbs/v0/resource/cai/evil/key")
[ "$code" = 401 ] && pass admin_no_token_refused || fail admin_no_token_refused "$code"

# The audit table has every release and refusal, with digests, never secrets.
"$CAI" kbs admin --url "$K" --key admin.key audit --limit 1000 > audit.json
python3 - audit.json <<'EOF' && pass audit_records || fail audit_records "$(head -c 600 audit.json)"
import json, sys
a = json.load(open(sys.argv[1]))
ev = [r["event"] for r in a]
rel = [r for r in a if r["event"] == "release"]
assert ev.count("release") >= 2 and ev.count("refuse") >= 7 and "put" in ev and "policy" in ev, ev
assert all(len(r["evidence_digest"]) == 64 and len(r["claims_digest"]) == 64 and r["resource"] in ("cai/model/key", "cai/race/key") for r in rel), rel
assert any("claim mr_td" in (r["detail"] or "") for r in a)
EOF
xxd -p -c 64 key.bin > key.hex
! grep -qF -f key.hex kbs.log audit.json && pass key_never_logged || fail key_never_logged "key bytes in a log"

# An independent client: Node's crypto, jose and canonicalize.
head -c 48 /dev/urandom > interop.bin
"$CAI" kbs admin --url "$K" --key admin.key put pub/interop/key interop.bin >/dev/null
if have_node kbs_client; then
    kbs_node interop "$K" interop.bin
    kbs_node refusals "$K"
fi
# What the CoCo guest components send (init-data, additional evidence, a
# P-521 key); the key registered in Trustee's admin form, a raw POST.
head -c 32 /dev/urandom > coco.bin
TOK=$("$CAI" kbs admin token --key admin.key)
# Its claims carry the "role" Trustee's admin API requires (bearer_jwt.rs).
role=$(python3 -c 'import sys, json, base64; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["role"])' "$TOK")
[ "$role" = admin ] && pass admin_token_has_trustee_role || fail admin_token_has_trustee_role "role '$role'"
code=$(curl -s -o coco-put.json -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/octet-stream' --data-binary @coco.bin "$K/kbs/v0/resource/coco/pod/key")
[ "$code" = 200 ] && pass admin_upstream_post_form || fail admin_upstream_post_form "$code $(cat coco-put.json)"
if have_node kbs_coco; then
    VECTORS="$ROOT/tests/vectors/kbs" kbs_node coco "$K" coco.bin
fi

# /health: 200 while the store answers, no token needed; /healthz: alive.
code=$(curl -s -o health.json -w '%{http_code}' "$K/health")
[ "$code" = 200 ] && grep -q '"status":"ok"' health.json && pass health_200 || fail health_200 "$code $(cat health.json)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$K/healthz")
[ "$code" = 200 ] && pass healthz_200 || fail healthz_200 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$K/health")
[ "$code" = 405 ] && pass health_get_only || fail health_get_only "$code"
check admin_delete "$CAI" kbs admin --url "$K" --key admin.key delete pub/interop/key
"$CAI" kbs admin --url "$K" --key admin.key list > list.json &&
    grep -q '"cai/model/key"' list.json && ! grep -q 'pub/interop/key' list.json &&
    pass admin_delete_gone_from_list || fail admin_delete_gone_from_list "$(cat list.json)"
refuses admin_delete_twice_404 "404.*no resource" "$CAI" kbs admin --url "$K" --key admin.key delete pub/interop/key

# Durability: kill -9 in the middle of 1,000 writes, restart, every
# acknowledged write present and readable, the database intact.
if have_node durability; then
    : > acks.txt
    kbs_node write "$K" 1000 acks.txt &
    W=$!
    for i in $(seq 1 600); do [ "$(wc -l < acks.txt)" -ge 300 ] && break; sleep 0.05; done
    kill -9 $KBS
    wait $KBS 2>/dev/null
    wait $W
    n=$(wc -l < acks.txt)
    [ "$n" -ge 300 ] && [ "$n" -lt 1000 ] && pass killed_mid_writes || fail killed_mid_writes "$n writes acknowledged before the kill"
    start_kbs kbs.log --insecure-http
    kbs_node check "$K" acks.txt
    python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0]; sys.exit(r != "ok")' kbs.db &&
        pass integrity_check || fail integrity_check "PRAGMA integrity_check failed"
fi

# Graceful shutdown: SIGTERM while 24 releases wait for their audit record
# (another process holds the database's write lock). The broker stops taking
# requests, but every release it put on record in the audit log is answered
# to its client before it exits.
head -c 32 /dev/urandom > shutdown.bin
"$CAI" kbs admin --url "$K" --key admin.key put pub/shutdown/key shutdown.bin >/dev/null
if have_node graceful_shutdown; then
    kbs_node shutdown "$K" "$KBS" 24 kbs.db answered.txt
    wait $KBS
    [ $? = 0 ] && pass shutdown_exit_status || fail shutdown_exit_status "not 0"
    start_kbs kbs.log --insecure-http
    "$CAI" kbs admin --url "$K" --key admin.key audit --limit 100000 > audit2.json
    logged=$(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["event"] == "release" and r["resource"] == "pub/shutdown/key"))' audit2.json)
    answered=$(cat answered.txt 2>/dev/null)
    [ -n "$answered" ] && [ "$answered" -ge 1 ] && [ "$logged" = "$answered" ] &&
        pass shutdown_answers_every_logged_release ||
        fail shutdown_answers_every_logged_release "$logged releases in the audit log, $answered answered"
fi
kill -TERM $KBS 2>/dev/null; wait $KBS 2>/dev/null
head -c 32 /dev/urandom > bad.key && chmod 600 bad.key
refuses wrong_master_key "master key does not match" "$CAI" kbs --db kbs.db --master-key bad.key --insecure-http --port 0

# Sessions expire: a broker with a 2-second session lifetime.
start_kbs kbs.log --insecure-http --session-ttl 2
"$CAI" kbs admin --url "$K" --key admin.key put pub/expiry/key shutdown.bin >/dev/null
if have_node expired_sessions; then
    kbs_node expired "$K"
fi
kill -TERM $KBS; wait $KBS
[ $? = 0 ] && pass clean_shutdown || fail clean_shutdown "exit status"

# A broker that does not trust the sim root refuses sim evidence outright.
KBS_NOSIM_PORT=$(free_port)
"$CAI" kbs --db nosim.db --master-key master2.key --insecure-http --port "$KBS_NOSIM_PORT" --policy policy.json --rate 5 >> kbs.log 2>&1 &
KBS=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$KBS_NOSIM_PORT/kbs/v0/x" && break; sleep 0.1; done
K_SIM=$K
K=http://127.0.0.1:$KBS_NOSIM_PORT
refused refuse_sim_root_not_trusted "root untrusted|TDX evidence is refused" kbs:///cai/model/key --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2"
# No --admin-pub: the admin API is off, even for the admin's valid token.
refuses admin_api_off_without_admin_pub "401.*admin API is off" "$CAI" kbs admin --url "$K" --key admin.key list
code=$(curl -s -o resp.json -w '%{http_code}' -X POST -H "Authorization: Bearer $("$CAI" kbs admin token --key admin.key)" --data-binary @shutdown.bin "$K/kbs/v0/resource/pub/evil/key")
[ "$code" = 401 ] && grep -q "admin API is off" resp.json && pass admin_put_refused_without_admin_pub || fail admin_put_refused_without_admin_pub "$code $(cat resp.json)"
K=$K_SIM
# Per-client rate limit (--rate 5, burst 10): a burst of 40 requests meets 429s.
for i in $(seq 1 40); do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "http://127.0.0.1:$KBS_NOSIM_PORT/kbs/v0/auth" -d '{}'
done > codes.txt
grep -qx 429 codes.txt && grep -qx 401 codes.txt && pass rate_limited || fail rate_limited "$(sort codes.txt | uniq -c)"
kill -TERM $KBS; wait $KBS

# HTTPS with a configured certificate; the agent verifies it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.crt \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
KSCHEME=https KCURL="--cacert tls.crt" start_kbs kbs.log --tls-cert tls.crt --tls-key tls.key
agent kbs:///cai/model/key --kbs-ca tls.crt --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" 2>agent.err | cmp -s - key.bin &&
    pass https_release || fail https_release "$(cat agent.err)"
err=$(agent kbs:///cai/model/key --attempts 1 --sim-mrtd "$MRTD" --sim-rtmr 2="$RT2" 2>&1 >/dev/null)
echo "$err" | grep -qi "certificate" && pass https_verifies_server || fail https_verifies_server "$err"
kill -TERM $KBS; wait $KBS
! grep -qE 'Sanitizer|runtime error' kbs.log && pass no_sanitizer_reports || fail no_sanitizer_reports "$(grep -E -A5 'Sanitizer|runtime error' kbs.log | head)"
finish
