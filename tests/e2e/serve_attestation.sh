# GET /v1/attestation on cai serve --tee sim: the quote verifies with
# `cai attest verify`, its REPORTDATA is the documented binding of the nonce
# and the model's SHA-256 (recomputed here with Python's hashlib), bad
# nonces get 400 in OpenAI's error shape; the option rules of --tee.
. "$(dirname "$0")/lib.sh"
cd "$T"

"$CAI" attest sim-init sim >/dev/null || fail sim_init "cannot create the sim PKI"

# The option rules (no server starts).
usage() { # NAME PATTERN ARGS...: exit 2 with PATTERN on stderr
    local name="$1" pattern="$2"; shift 2
    local err rc
    err=$("$CAI" serve -m none.gguf --port 0 "$@" 2>&1 >/dev/null); rc=$?
    [ "$rc" = 2 ] && echo "$err" | grep -qiE "$pattern" && pass "$name" || fail "$name" "exit $rc: $err"
}
usage tee_sim_needs_dir "needs --sim-dir" --tee sim
usage sim_dir_needs_tee_sim "is for --tee sim" --sim-dir sim
usage tee_unknown "tdx, sim or coco" --tee sgx
usage sim_dir_with_tdx "is for --tee sim" --tee tdx --sim-dir sim
# No guest interface (pointed at paths that do not exist): refused at start-up.
CAI_TSM_REPORT_DIR=/nonexistent/tsm CAI_TDX_GUEST_DEVICE=/nonexistent/dev \
    refuses tee_tdx_unavailable "tee tdx: no TDX guest interface" "$CAI" serve -m none.gguf --port 0 --tee tdx
"$CAI" attest sim-init broken >/dev/null && rm broken/pck.key
refuses tee_sim_broken_dir "pck|cannot|open|read" "$CAI" serve -m none.gguf --port 0 --tee sim --sim-dir broken

start_serve serve_attestation --tee sim --sim-dir sim && pass health_200 || fail health_200 "$(cat serve.log)"
grep -q 'INSECURE: --tee sim' serve.log && pass sim_warns_insecure || fail sim_warns_insecure "$(head -5 serve.log)"
DIGEST=$(sha m.gguf)

# attest_ok NAME NONCE_HEX: the endpoint's answer for NONCE verifies and binds it.
attest_ok() {
    local name="$1" nonce="$2" code
    code=$(curl -s -o "$name.json" -w '%{http_code}' "$U/v1/attestation?nonce=$nonce")
    [ "$code" = 200 ] || { fail "$name" "HTTP $code: $(cat "$name.json")"; return; }
    python3 - "$name.json" "$nonce" "$DIGEST" "$name.quote" <<'PY' || { fail "$name" "response: $(head -c 600 "$name.json")"; return; }
import base64, hashlib, json, struct, sys
a = json.load(open(sys.argv[1]))
nonce, digest = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
label = b"cai-serve-attestation-v1"
want = hashlib.sha512(struct.pack(">I", len(label)) + label + struct.pack(">I", len(nonce)) + nonce
                      + struct.pack(">I", 32) + digest).hexdigest()
assert a["object"] == "attestation" and a["tee"] == "sim", a
assert a["evidence_format"] == "tdx_quote_v4" and a["binding"] == "cai-serve-attestation-v1", a
assert a["nonce"] == nonce.hex() and a["model_digest"] == digest.hex() and a["model"] == "m", a
assert a["report_data"] == want, (a["report_data"], want)
q = base64.b64decode(a["quote"], validate=True)
assert struct.unpack("<H", q[0:2])[0] == 4 and struct.unpack("<I", q[4:8])[0] == 0x81
# TD report 1.0 after the 48-byte header: REPORTDATA at offset 520 of the body.
assert q[48 + 520:48 + 584].hex() == want, "the quote's REPORTDATA is not the binding"
open(sys.argv[4], "wb").write(q)
with open(sys.argv[4] + ".want", "w") as f:
    f.write(want)
PY
    local v
    v=$("$CAI" attest verify "$name.quote" --trust-sim sim --collateral sim/collateral.json --json 2>"$name.err")
    echo "$v" | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["verified"] is True and c["tcb_status"] == "UpToDate" and c["debug"] is False, c
assert c["report_data"] == open(sys.argv[1]).read(), c["report_data"]
'  "$name.quote.want" && pass "$name" || fail "$name" "verify: $(cat "$name.err") $(echo "$v" | head -c 300)"
}
N1=$(openssl rand -hex 32)
attest_ok attest_32_byte_nonce "$N1"
attest_ok attest_16_byte_nonce "$(openssl rand -hex 16)"
attest_ok attest_64_byte_nonce "$(openssl rand -hex 64)"
N2=$(openssl rand -hex 24)
code=$(curl -s -o upper.json -w '%{http_code}' "$U/v1/attestation?nonce=$(echo "$N2" | tr a-f A-F)")
[ "$code" = 200 ] && python3 -c 'import json,sys; assert json.load(open("upper.json"))["nonce"] == sys.argv[1]' "$N2" \
    && pass nonce_upper_case_accepted || fail nonce_upper_case_accepted "HTTP $code $(head -c 300 upper.json)"

# The quote is about this nonce only: verified with another nonce's binding it fails.
if [ -f attest_32_byte_nonce.quote ] && [ -f attest_16_byte_nonce.quote.want ]; then
    v=$("$CAI" attest verify attest_32_byte_nonce.quote --trust-sim sim --collateral sim/collateral.json --json 2>/dev/null)
    echo "$v" | grep -q "$(cat attest_16_byte_nonce.quote.want)" && fail fresh_per_nonce "two nonces, one REPORTDATA" || pass fresh_per_nonce
fi
# Not trusted without --trust-sim: the sim's quotes are not Intel's.
[ -f attest_32_byte_nonce.quote ] && refuses sim_quote_untrusted_by_default "root untrusted" \
    "$CAI" attest verify attest_32_byte_nonce.quote --collateral sim/collateral.json

# Bad nonces: 400 in OpenAI's error shape, naming the parameter.
bad_nonce() { # NAME QUERY
    local code
    code=$(curl -s -o bad.json -w '%{http_code}' "$U/v1/attestation$2")
    [ "$code" = 400 ] && python3 -c '
import json
e = json.load(open("bad.json"))["error"]
assert e["type"] == "invalid_request_error" and e["param"] == "nonce" and e["code"] == "invalid_nonce" and e["message"], e
' && pass "$1" || fail "$1" "HTTP $code $(cat bad.json)"
}
bad_nonce nonce_missing ""
bad_nonce nonce_empty "?nonce="
bad_nonce nonce_15_bytes "?nonce=$(openssl rand -hex 15)"
bad_nonce nonce_65_bytes "?nonce=$(openssl rand -hex 65)"
bad_nonce nonce_odd_length "?nonce=$(openssl rand -hex 16)a"
bad_nonce nonce_not_hex "?nonce=$(openssl rand -hex 15)zz"
bad_nonce nonce_prefixed "?nonce=0x$(openssl rand -hex 16)"
bad_nonce nonce_other_name "?n=$(openssl rand -hex 16)"
code=$(curl -s -o post.json -w '%{http_code}' -X POST "$U/v1/attestation?nonce=$N1")
[ "$code" = 405 ] && grep -q '"error"' post.json && pass attestation_post_405 || fail attestation_post_405 "HTTP $code"

# Many at once: each answer is a verified binding of its own nonce, or 429.
for i in $(seq 1 24); do
    n=$(openssl rand -hex 32)
    ( code=$(curl -s -o "par$i.json" -w '%{http_code}' "$U/v1/attestation?nonce=$n"); echo "$code $n" > "par$i.code" ) &
done
wait_clients() { for i in $(seq 1 24); do while [ ! -s "par$i.code" ]; do sleep 0.05; done; done; }
wait_clients
out=$(python3 - "$DIGEST" <<'PY'
import base64, hashlib, json, struct, sys
label = b"cai-serve-attestation-v1"
digest = bytes.fromhex(sys.argv[1])
ok = limited = 0
for i in range(1, 25):
    code, nonce = open(f"par{i}.code").read().split()
    a = json.load(open(f"par{i}.json"))
    if code == "429":
        assert a["error"]["type"] == "rate_limit_error", a
        limited += 1
        continue
    assert code == "200", (code, a)
    n = bytes.fromhex(nonce)
    want = hashlib.sha512(struct.pack(">I", 24) + label + struct.pack(">I", len(n)) + n
                          + struct.pack(">I", 32) + digest).digest()
    assert base64.b64decode(a["quote"])[568:632] == want, i
    ok += 1
assert ok >= 1, "none answered"
print(f"{ok} bound, {limited} refused with 429")
PY
) && pass "concurrent_attestations ($out)" || fail concurrent_attestations "$out"

curl -s "$U/metrics" | grep -qE 'cai_http_requests_total\{endpoint="attestation",code="2xx"\} [1-9]' &&
    curl -s "$U/metrics" | grep -qE 'cai_http_requests_total\{endpoint="attestation",code="4xx"\} [1-9]' &&
    pass attestation_metrics || fail attestation_metrics "$(curl -s "$U/metrics" | grep attestation)"
stop_serve

# Sealed boot: the digest bound is the one of the plaintext the server decrypted.
"$CAI" seal m.gguf -o m.sealed -k k --new-key >/dev/null
PORT=$(free_port); U=http://127.0.0.1:$PORT
"$CAI" serve --sealed m.sealed --key-file k --model-id m --port "$PORT" --tee sim --sim-dir sim > serve.log 2>&1 &
SERVER=$!
if wait_http "$U/health" 30; then
    attest_ok attest_sealed_boot "$(openssl rand -hex 32)"
else
    fail attest_sealed_boot "$(cat serve.log)"
fi
stop_serve
finish
