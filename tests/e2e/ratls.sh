# Attested TLS end to end, real processes on loopback: cai serve --tee sim
# --tls attested, cai proxy in both modes (curl through http_proxy as the
# tutorial does, curl and the official openai SDK through mapping mode, the
# web chat page), cai chat --url https:// in tmux; then the refusal table,
# each row asserting the 502 names the failed check AND that the upstream
# received nothing.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "SKIP ratls: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null && "$CAI" attest sim-init other >/dev/null
DIGEST=$(sha m.gguf)
ZERO=$(printf '0%.0s' $(seq 96))
PIDS=""
# No request may hang the suite.
curl() { command curl --max-time 60 "$@"; }
trap 'kill $PIDS 2>/dev/null; wait $PIDS 2>/dev/null; tmux kill-server 2>/dev/null; rm -rf "$T"' EXIT

# s_server NAME OUT ARGS...: OpenSSL's test server on a free port (set in
# port_NAME), writing what clients send to OUT. It quits when its standard
# input ends, so that is a FIFO this shell holds open until it exits. A port
# taken meanwhile (by a client's own end of a connection) is tried again.
s_server() {
    local name="$1" out="$2" fifo port
    shift 2
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        fifo=$(mktemp -u "$T/stdin.XXXXXX")
        mkfifo "$fifo"
        openssl s_server -accept "127.0.0.1:$port" "$@" -quiet < "$fifo" > "$out" 2>>s_server.err &
        PIDS="$PIDS $!"
        exec {HOLD}>"$fifo"
        eval "port_$name=$port"
        wait_port "$port" && return 0
    done
    return 1
}
# wait_port PORT: until something listens on PORT, seen in /proc/net/tcp*
# without connecting (OpenSSL's s_server serves one connection at a time, and
# a probe's would count as a client).
wait_port() {
    local hex
    hex=$(printf ':%04X ' "$1")
    for _ in $(seq 1 200); do
        awk '$4 == "0A" {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q -- "${hex% }\$" &&
            return 0
        sleep 0.1
    done
    echo "  nothing listens on port $1: $(tail -n 3 s_server.err 2>/dev/null)"
    return 1
}
# serve NAME ARGS...: cai serve --tls attested on a free port; sets PORT_NAME.
serve() {
    local name="$1" port; shift
    port=$(free_port)
    "$CAI" serve -m m.gguf --model-id qwen --port "$port" --tee sim --tls attested "$@" > "serve-$name.log" 2>&1 &
    PIDS="$PIDS $!"
    eval "PORT_$name=$port"
    wait_http "https://127.0.0.1:$port/health" 30 -k
}
# policy FILE SET-JSON: a policy trusting sim whose one server set is SET-JSON.
policy() {
    printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": %s}, "servers": ["td"]}\n' "$2" > "$1"
}
# proxy NAME ARGS...: cai proxy on a free port; sets PP_NAME.
proxy() {
    local name="$1" port; shift
    port=$(free_port)
    "$CAI" proxy --listen "127.0.0.1:$port" "$@" > "proxy-$name.log" 2>&1 &
    PIDS="$PIDS $!"
    eval "PP_$name=$port PID_$name=$!"
    wait_http "http://127.0.0.1:$port/.cai/proxy" 10
}
chat_count() { # chat completions the server at port $1 answered
    curl -sk "https://127.0.0.1:$1/metrics" |
        awk '/^cai_http_requests_total\{endpoint="chat_completions"/ { n += $2 } END { print n + 0 }'
}
ASK='{"model": "qwen", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8, "seed": 1}'

serve main --sim-dir sim --receipts && pass server_up || fail server_up "$(cat serve-main.log)"
S=https://127.0.0.1:$PORT_main
grep -q "attested TLS: new certificate sha256:" serve-main.log && pass server_logs_certificate ||
    fail server_logs_certificate "$(cat serve-main.log)"

# The server speaks TLS 1.3 only, with an attested certificate.
curl -s -o /dev/null "http://127.0.0.1:$PORT_main/health" && fail plain_http_refused "answered plain HTTP" ||
    pass plain_http_refused
out=$(openssl s_client -connect "127.0.0.1:$PORT_main" -tls1_2 </dev/null 2>&1)
echo "$out" | grep -qi 'alert protocol version' && pass server_refuses_tls12 ||
    fail server_refuses_tls12 "$(echo "$out" | tail -3)"
openssl s_client -connect "127.0.0.1:$PORT_main" -tls1_3 </dev/null 2>/dev/null | openssl x509 > served.pem
openssl x509 -in served.pem -noout -text | grep -q '2.23.133.5.4.9' && pass certificate_carries_evidence ||
    fail certificate_carries_evidence "$(openssl x509 -in served.pem -noout -text | head -30)"

policy good.json "{\"mr_td\": [\"$ZERO\"], \"model_digest\": [\"$DIGEST\"]}"
proxy main --policy good.json --trust-sim sim && pass proxy_up || fail proxy_up "$(cat proxy-main.log)"
P=http://127.0.0.1:$PP_main

# The tutorial's client: http_proxy set, plain http:// URL to the TD.
out=$(http_proxy=$P curl -s -D headers.txt "http://127.0.0.1:$PORT_main/v1/chat/completions" \
    -H 'Content-Type: application/json' -d "$ASK")
echo "$out" | grep -q '"object":"chat.completion"' && pass http_proxy_chat || fail http_proxy_chat "$out"
grep -qi "^X-Cai-Attested: tee=sim; tcb_status=UpToDate; mr_td=$ZERO; model_digest=$DIGEST" headers.txt &&
    pass header_names_what_was_verified || fail header_names_what_was_verified "$(cat headers.txt)"
http_proxy=$P curl -sN -o stream0.txt "http://127.0.0.1:$PORT_main/v1/chat/completions" \
    -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": true}'
out=$(cat stream0.txt)
[ "$(echo "$out" | grep -c '^data: {')" -ge 2 ] && echo "$out" | grep -q '^data: \[DONE\]' &&
    echo "$out" | tail -n 3 | grep -q '^event: cai-receipt' &&
    pass http_proxy_stream_with_receipt || fail http_proxy_stream_with_receipt "$(echo "$out" | tail -n 4 | cut -c1-200)"
[ "$(grep -c "verified https://127.0.0.1:$PORT_main: simulated TEE" proxy-main.log)" = 1 ] &&
    grep -q "model sha256:$DIGEST" proxy-main.log && pass proxy_prints_once_per_server ||
    fail proxy_prints_once_per_server "$(cat proxy-main.log)"
out=$(curl -s "$P/.cai/proxy")
echo "$out" | grep -q "\"model_digest\":\"$DIGEST\"" && pass proxy_status_json || fail proxy_status_json "$out"
out=$(curl -s -x "$P" -o /dev/null -w '%{http_connect}' "https://127.0.0.1:$PORT_main/v1/models")
case "$out" in 405|501) pass connect_refused ;; *) fail connect_refused "CONNECT answered $out" ;; esac

# Mapping mode: a browser or an SDK talks to the proxy as if it were the server.
proxy map --policy good.json --trust-sim sim --to "$S" || fail proxy_map_up "$(cat proxy-map.log)"
M=http://127.0.0.1:$PP_map
curl -s "$M/" | grep -qi '<html' && pass mapping_web_chat_page || fail mapping_web_chat_page "$(curl -s "$M/" | head -5)"
out=$(curl -s "$M/v1/models")
echo "$out" | grep -q '"id":"qwen"' && pass mapping_models || fail mapping_models "$out"
# One client's requests one after another reuse one upstream connection: the
# worker that finished last (whose connection is warm) takes the next request.
for _ in 1 2 3 4 5 6; do curl -s -o /dev/null "$M/v1/models"; done
n=$(ss -Htnp state established "( dport = :$PORT_main )" | grep -c "pid=$PID_map,")
[ "$n" = 1 ] && pass mapping_one_upstream_connection ||
    fail mapping_one_upstream_connection "$n connections to the server for 8 requests in a row"
if command -v node >/dev/null && [ -d "$ROOT/node_modules/openai" ]; then
    (cd "$ROOT" && node tests/e2e/openai_sdk.mjs "$M" qwen) 2>&1 | sed 's/^PASS /PASS via_proxy_/; s/^FAIL /FAIL via_proxy_/'
else
    fail openai_sdk "node or the openai package is missing (./run setup)"
fi

# cai chat --url https://: verified before the first prompt, then a conversation.
if command -v tmux >/dev/null; then
    screen() { tmux capture-pane -p -t chat; }
    wait_for() { for _ in $(seq 1 150); do screen | grep -q -- "$1" && return 0; sleep 0.1; done; return 1; }
    tmux new-session -d -s chat -x 200 -y 50 "'$CAI' chat --url $S --trust-sim sim --model-digest $DIGEST -n 6 --seed 1 --temp 0; echo CHAT-EXITED rc=\$?; sleep 30"
    wait_for 'attested (attested TLS): simulated TEE' && screen | grep -q "sha256:$DIGEST (as expected)" &&
        pass chat_https_attested || fail chat_https_attested "$(screen)"
    n0=$(chat_count "$PORT_main")
    tmux send-keys -t chat 'Hello there' Enter
    # The reply is done when the server counted it and the next prompt shows.
    for _ in $(seq 1 300); do
        [ "$(chat_count "$PORT_main")" -gt "$n0" ] && [ "$(screen | grep -c '^>')" -ge 2 ] && break
        sleep 0.1
    done
    [ "$(chat_count "$PORT_main")" -gt "$n0" ] && [ "$(screen | grep -c '^>')" -ge 2 ] &&
        pass chat_https_reply || fail chat_https_reply "$(screen)"
    tmux send-keys -t chat '/exit' Enter
    wait_for 'CHAT-EXITED rc=0' && pass chat_https_exit || fail chat_https_exit "$(screen)"
else
    fail chat_https "tmux is missing (./run setup)"
fi
refuses chat_https_other_digest "claim model_digest" \
    "$CAI" chat --url "$S" --trust-sim sim --model-digest "$(printf 'f%.0s' $(seq 64))"

# ---- receipts: signed by the attested key, verified offline ----
printf '%s' '{"model": "qwen", "messages": [{"role": "user", "content": "Tell me"}], "max_tokens": 8, "seed": 7, "temperature": 0.5}' > req.json
http_proxy=$P curl -s "http://127.0.0.1:$PORT_main/v1/chat/completions" --data-binary @req.json > resp.json
python3 -c 'import json,sys; d=json.load(open("resp.json")); sys.stdout.write(d["choices"][0]["message"]["content"])' > text.txt
check receipt_verifies "$CAI" receipt verify resp.json --request req.json --response text.txt --trust-sim sim
printf '%s' '{"model": "qwen", "messages": [{"role": "user", "content": "Tell me"}], "max_tokens": 8, "seed": 7, "stream": true}' > sreq.json
http_proxy=$P curl -sN -o stream.txt "http://127.0.0.1:$PORT_main/v1/chat/completions" --data-binary @sreq.json
python3 - <<'PY'
import json
text, receipt, done = "", None, False
event = None
for line in open("stream.txt", encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("event: "):
        event = line[7:]
    elif line == "data: [DONE]":
        done = True
    elif line.startswith("data: ") and event == "cai-receipt":
        receipt = line[6:]
    elif line.startswith("data: "):
        d = json.loads(line[6:])
        for c in d["choices"]:
            text += c["delta"].get("content") or ""
    elif line == "":
        event = None
assert done and receipt, "no [DONE] or no receipt event after it"
open("stext.txt", "w", encoding="utf-8").write(text)
open("sreceipt.json", "w").write(receipt)
PY
check receipt_stream_verifies "$CAI" receipt verify sreceipt.json --request sreq.json --response stext.txt --trust-sim sim
printf 'x' >> text.txt
refuses receipt_changed_response "response_sha256" "$CAI" receipt verify resp.json --request req.json --response text.txt --trust-sim sim
sed 's/"Tell me"/"Tell me!"/' req.json > req2.json
refuses receipt_changed_request "request_sha256" "$CAI" receipt verify resp.json --request req2.json --trust-sim sim
sed 's/"temperature":0.5[0-9]*/"temperature":0.9/' resp.json > resp-param.json
! cmp -s resp.json resp-param.json && pass receipt_param_edited || fail receipt_param_edited "sed changed nothing"
refuses receipt_changed_parameter "signature" "$CAI" receipt verify resp-param.json --trust-sim sim
sed "s/\"model_digest\":\"$DIGEST\"/\"model_digest\":\"$(printf 'ab%.0s' $(seq 32))\"/" resp.json > resp-model.json
refuses receipt_changed_model_digest "signature|model_digest" "$CAI" receipt verify resp-model.json --trust-sim sim
refuses receipt_other_root "certificate" "$CAI" receipt verify resp.json --trust-sim other

# ---- refusal table: 502 naming the check, nothing reaches the server ----
# refused NAME PROXY-URL TARGET-PORT PATTERN COUNT-CMD: a chat request through
# the proxy gets 502 matching PATTERN, and COUNT-CMD prints the same before and after.
refused() {
    local name="$1" purl="$2" port="$3" pattern="$4" count="$5" before after code body
    before=$($count)
    body=$(http_proxy=$purl curl -s -w '\n%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
        -H 'Content-Type: application/json' -d "$ASK")
    code=$(echo "$body" | tail -n 1)
    after=$($count)
    if [ "$code" = 502 ] && echo "$body" | grep -qE "$pattern" && [ "$before" = "$after" ]; then
        pass "$name"
    else
        fail "$name" "HTTP $code, requests $before -> $after: $(echo "$body" | head -n 1)"
    fi
}
recorded() { cat "$1" 2>/dev/null | wc -c; } # bytes a test peer received

# An ordinary self-signed certificate (OpenSSL's own server, echoing what it gets).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout plain.key -out plain.pem \
    -subj /CN=plain -days 1 2>/dev/null
s_server plain got-plain.txt -cert plain.pem -key plain.key -tls1_3
refused ordinary_certificate "$P" "$port_plain" 'no evidence extension' "recorded got-plain.txt"

# A certificate whose quote binds another key: the TD's evidence copied into a
# certificate for a key the copier holds.
ext_hex=$(python3 - served.pem <<'PY'
import subprocess, sys, re
der = subprocess.run(['openssl', 'x509', '-in', sys.argv[1], '-outform', 'DER'], capture_output=True).stdout
out = subprocess.run(['openssl', 'asn1parse', '-inform', 'DER'], input=der, capture_output=True).stdout.decode().splitlines()
for i, l in enumerate(out):
    if '2.23.133.5.4.9' in l:
        n = out[i + 1]
        off = int(n.split(':')[0]); hl = int(re.search(r'hl=\s*(\d+)', n).group(1))
        ln = int(re.search(r'l=\s*(\d+)', n.split('hl=')[1]).group(1))
        print(der[off + hl:off + hl + ln].hex())
PY
)
forge() { # forge NAME HEX: a self-signed certificate with HEX as the evidence extension
    printf '[req]\ndistinguished_name = dn\n[dn]\n[ext]\n2.23.133.5.4.9 = DER:%s\n' "$2" > "$1.cnf"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
        -subj "/CN=$1" -days 1 -config "$1.cnf" -extensions ext 2>/dev/null
}
serve_forged() { # serve_forged NAME: OpenSSL's server with that certificate; sets port_NAME
    s_server "$1" "got-$1.txt" -cert "$1.pem" -key "$1.key" -tls1_3
}
forge copied "$ext_hex" && serve_forged copied
refused quote_binds_another_key "$P" "$port_copied" 'key binding' "recorded got-copied.txt"
forge malformed "deadbeef" && serve_forged malformed
refused malformed_extension "$P" "$port_malformed" 'RA-TLS evidence' "recorded got-malformed.txt"
forge truncated "${ext_hex:0:$(( ${#ext_hex} / 4 * 2 ))}" && serve_forged truncated
refused truncated_extension "$P" "$port_truncated" 'RA-TLS evidence' "recorded got-truncated.txt"
forge oversized "$(head -c 600000 /dev/zero | od -An -tx1 -v | tr -d ' \n')" && serve_forged oversized
refused oversized_extension "$P" "$port_oversized" 'larger than|excessive message size' "recorded got-oversized.txt"

# The TD's own certificate served by a peer without its private key.
if cc -o impostor "$ROOT/tests/e2e/tls_impostor.c" -lssl -lcrypto 2>cc.log; then
    port_imp=$(free_port)
    ./impostor "$port_imp" served.pem got-impostor.txt > impostor.log 2>&1 &
    PIDS="$PIDS $!"
    wait_port "$port_imp"
    refused replayed_certificate_without_key "$P" "$port_imp" 'handshake .*failed.*bad signature' \
        "recorded got-impostor.txt"
    ! grep -q "verified https://127.0.0.1:$port_imp" proxy-main.log && pass impostor_not_recorded ||
        fail impostor_not_recorded "$(cat proxy-main.log)"
else
    fail replayed_certificate_without_key "cannot build the impostor: $(cat cc.log)"
fi

# TLS 1.2 offered by the server.
s_server tls12 got-tls12.txt -cert plain.pem -key plain.key -tls1_2
refused tls12_offered "$P" "$port_tls12" 'handshake .*failed.*protocol version' "recorded got-tls12.txt"

# Real cai servers the policy or the trust roots refuse.
count_main() { chat_count "$PORT_main"; }
proxy untrusted --policy good.json --trust-sim other
refused untrusted_sim_root "http://127.0.0.1:$PP_untrusted" "$PORT_main" 'quote.*(root|does not verify)' count_main
policy mrtd.json "{\"mr_td\": [\"$(printf '01%.0s' $(seq 48))\"]}"
proxy mrtd --policy mrtd.json --trust-sim sim
refused wrong_mrtd "http://127.0.0.1:$PP_mrtd" "$PORT_main" 'claim mr_td' count_main
policy digest.json "{\"model_digest\": [\"$(printf 'ab%.0s' $(seq 32))\"]}"
proxy digest --policy digest.json --trust-sim sim
refused other_model_digest "http://127.0.0.1:$PP_digest" "$PORT_main" 'claim model_digest' count_main
serve debug --sim-dir sim --sim-debug || fail debug_server_up "$(cat serve-debug.log)"
count_debug() { chat_count "$PORT_debug"; }
refused debug_td "$P" "$PORT_debug" 'DEBUG' count_debug
# Stale: a window of 10 s, and a certificate issued longer ago than that.
proxy stale --policy good.json --trust-sim sim --max-age 10s
nb=$(curl -s "$P/.cai/proxy" | python3 -c 'import json,sys; print(json.load(sys.stdin)["servers"][0]["verified"]["cert_not_before"])')
while [ $(( $(date +%s) - nb )) -le 11 ]; do sleep 1; done
refused stale_certificate "http://127.0.0.1:$PP_stale" "$PORT_main" 'stale' count_main

# The servers still serve, and shut down cleanly.
http_proxy=$P curl -s "http://127.0.0.1:$PORT_main/v1/models" | grep -q qwen && pass still_serving ||
    fail still_serving "$(tail -5 serve-main.log)"
! grep -qE 'Sanitizer|runtime error' serve-*.log proxy-*.log && pass no_sanitizer_reports ||
    fail no_sanitizer_reports "$(grep -E -A5 'Sanitizer|runtime error' serve-*.log proxy-*.log | head -20)"
finish
