# The whole confidential pipeline with real processes: the model owner seals a
# model and registers its key with `cai kbs`; `cai serve --sealed --kbs --tee
# sim` attests, receives the key, decrypts into memory and serves; a client
# checks the server's attestation and chats. A TD the policy does not accept
# gets no key and serves nothing.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "SKIP confidential: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
ZERO=$(printf '00%.0s' $(seq 48))
cat > policy.json <<EOF
{"version": 1, "tee": ["sim"], "tcb_status": ["UpToDate"],
 "reference_values": {"demo-td": {"mr_td": ["$ZERO"]}},
 "resources": [{"path": "cai/*", "allow": ["demo-td"]}]}
EOF
SERVER=
trap 'kill $KBS $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
kbs_start "" kbs.log --db kbs.db --master-key master.key --insecure-http \
    --admin-pub admin.pub --policy policy.json --trust-sim sim || fail kbs_starts "$(tail -3 kbs.log)"

# A seal that fails after registering its key withdraws the key: the same id
# can be sealed to afterwards (registration is create-only).
refuses seal_fails_no_folder "no-such-folder" "$CAI" seal m.gguf -o no-such-folder/m.cai --kbs "$K" --admin-key admin.key
ls > before.txt
out=$("$CAI" seal m.gguf -o m.cai --kbs "$K" --admin-key admin.key 2>&1)
echo "$out" | grep -q "registered as cai/m/key.*only copy of the key" && pass seal_and_register || fail seal_and_register "$out"
ls | grep -vxF -f before.txt | grep -vx m.cai | grep -q . && fail key_only_in_broker "new files: $(ls)" || pass key_only_in_broker

PORT=$(free_port)
U=http://127.0.0.1:$PORT
"$CAI" serve --sealed m.cai --kbs "$K" --tee sim --sim-dir sim --port "$PORT" > serve.log 2>&1 &
SERVER=$!
if wait_http "$U/health" 60; then pass sealed_boot_via_kbs; else fail sealed_boot_via_kbs "$(tail -5 serve.log)"; fi
grep -q "received the key kbs:///cai/m/key" serve.log && pass serve_logs_release || fail serve_logs_release "$(tail -3 serve.log)"
! grep -q INSECURE.*key.*file serve.log && pass no_key_file || fail no_key_file "key file path taken"
out=$(curl -s "$U/v1/completions" -d '{"model":"m","prompt":"Hello","max_tokens":4,"seed":1}')
echo "$out" | grep -q '"completion_tokens":4' && pass serves_completions || fail serves_completions "$out"

# The client side: the server's quote verifies, binds our nonce and the model.
NONCE=$(openssl rand -hex 32)
curl -s "$U/v1/attestation?nonce=$NONCE" > att.json
DIGEST=$("$CAI" inspect m.cai --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
python3 - att.json "$DIGEST" <<'EOF' && pass attestation_names_model || fail attestation_names_model "$(head -c 300 att.json)"
import json, sys
a = json.load(open(sys.argv[1]))
assert a["model_digest"] == sys.argv[2], (a["model_digest"], sys.argv[2])
EOF
python3 -c 'import json,sys,base64; open("q.bin","wb").write(base64.b64decode(json.load(open("att.json"))["quote"]))'
check server_quote_verifies "$CAI" attest verify q.bin --collateral sim/collateral.json --trust-sim sim
"$CAI" kbs admin --url "$K" --key admin.key audit | grep -q '"release"' && pass release_audited || fail release_audited "no release record"
kill -TERM $SERVER; wait $SERVER; rc=$?
[ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' serve.log && pass clean_shutdown || fail clean_shutdown "exit $rc"
SERVER=

# The sealed model from a URL: downloaded (ciphertext only, into an unnamed
# file), resumed after the connection breaks mid-way, then checked chunk by chunk.
python3 "$ROOT/tests/e2e/range_server.py" m.cai port.txt 100000 2> range.log &
RS=$!
for i in $(seq 1 50); do [ -s port.txt ] && break; sleep 0.1; done
PORT=$(free_port)
U=http://127.0.0.1:$PORT
"$CAI" serve --sealed "http://127.0.0.1:$(cat port.txt)/models/m.cai" --kbs "$K" --tee sim --sim-dir sim \
    --port "$PORT" > serve-url.log 2>&1 &
SERVER=$!
if wait_http "$U/health" 60; then pass sealed_boot_from_url; else fail sealed_boot_from_url "$(tail -5 serve-url.log)"; fi
grep -q "Range=bytes=100000-" range.log && grep -q "downloaded the sealed model.*$(stat -c %s m.cai) bytes" serve-url.log &&
    pass download_resumed || fail download_resumed "$(cat range.log; tail -3 serve-url.log)"
curl -s "$U/v1/models" | grep -q '"id":"m"' && pass url_model_id || fail url_model_id "$(curl -s "$U/v1/models")"
kill -TERM $SERVER; wait $SERVER; SERVER=
kill $RS; wait $RS 2>/dev/null
# A tampered copy on the server: refused, nothing served.
cp m.cai bad.cai && flip_byte bad.cai 200000
rm -f port.txt
python3 "$ROOT/tests/e2e/range_server.py" bad.cai port.txt 2> /dev/null &
RS=$!
for i in $(seq 1 50); do [ -s port.txt ] && break; sleep 0.1; done
PORT=$(free_port)
"$CAI" serve --sealed "http://127.0.0.1:$(cat port.txt)/m.cai" --kbs "$K" --tee sim --sim-dir sim \
    --port "$PORT" > serve-bad.log 2>&1 &
SERVER=$!
for i in $(seq 1 100); do grep -q "cannot load the model" serve-bad.log && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
grep -q "failed authentication" serve-bad.log && [ "$code" != 200 ] && pass tampered_download_refused ||
    fail tampered_download_refused "health $code: $(tail -3 serve-bad.log)"
kill -TERM $SERVER; wait $SERVER; SERVER=
kill $RS; wait $RS 2>/dev/null

# A TD the policy does not accept: no key, no server.
sed "s/$ZERO/$(printf '11%.0s' $(seq 48))/" policy.json > other.json
"$CAI" kbs admin --url "$K" --key admin.key policy set other.json >/dev/null
refuses serve_refused_without_key "403 PolicyDeny.*claim mr_td" "$CAI" serve --sealed m.cai --kbs "$K" --tee sim --sim-dir sim --port "$(free_port)"
refuses serve_kbs_needs_tee "needs --tee" sh -c "\"$CAI\" serve --sealed m.cai --kbs \"$K\"; [ \$? = 2 ] && exit 1"
kill -TERM $KBS; wait $KBS
finish
