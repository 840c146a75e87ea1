# The serving tier behind HAProxy (deploy/haproxy/cai-serve.cfg), real
# processes on loopback: two `cai serve --tee sim --tls attested` replicas,
# HAProxy in TCP mode health-checking /health over TLS, `cai proxy` in front
# verifying whichever replica answers. Requests spread over both; one replica
# killed with SIGKILL; requests go on on the other.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! command -v haproxy >/dev/null; then
    echo "SKIP haproxy: haproxy absent (./run setup installs it)"
    exit 0
fi
if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "SKIP haproxy: node_modules absent (run ./run setup)"
    exit 0
fi
"$CAI" attest sim-init sim >/dev/null
DIGEST=$(sha m.gguf)
PIDS=""
trap 'kill $PIDS 2>/dev/null; wait $PIDS 2>/dev/null; rm -rf "$T"' EXIT
curl() { command curl --max-time 60 "$@"; }

replica() { # replica N: a cai serve replica on a free port; sets R<N> and PID<N>
    local port
    port=$(free_port)
    "$CAI" serve -m m.gguf --model-id qwen --port "$port" --tee sim --sim-dir sim \
        --tls attested > "serve-$1.log" 2>&1 &
    PIDS="$PIDS $!"
    eval "R$1=$port PID$1=$!"
}
replica 1
replica 2

LB=$(free_port) STATS=$(free_port)
CAI_LB_LISTEN=127.0.0.1:$LB CAI_REPLICA_1=127.0.0.1:$R1 CAI_REPLICA_2=127.0.0.1:$R2 \
    CAI_LB_STATS=127.0.0.1:$STATS haproxy -db -f "$ROOT/deploy/haproxy/cai-serve.cfg" \
    > haproxy.log 2>&1 &
PIDS="$PIDS $!"

# up NAME: HAProxy's health check has the replica in rotation.
status() { curl -s "http://127.0.0.1:$STATS/;csv" | awk -F, -v s="$1" '$1 == "cai_serve" && $2 == s { print $18 }'; }
wait_status() { # wait_status NAME STATUS
    for _ in $(seq 1 300); do
        [ "$(status "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
wait_status replica1 UP && wait_status replica2 UP && pass replicas_up_by_health_check ||
    fail replicas_up_by_health_check "replica1 $(status replica1), replica2 $(status replica2): $(tail -n 5 haproxy.log)"

printf '{"version": 1, "tee": ["sim"], "reference_values": {"td": {"model_digest": ["%s"]}}, "servers": ["td"]}\n' \
    "$DIGEST" > policy.json
P=$(free_port)
"$CAI" proxy --listen "127.0.0.1:$P" --policy policy.json --trust-sim sim \
    --to "https://127.0.0.1:$LB" > proxy.log 2>&1 &
PIDS="$PIDS $!"
wait_http "http://127.0.0.1:$P/.cai/proxy" 10 || fail proxy_up "$(cat proxy.log)"

answered() { # answered PORT: chat completions replica PORT answered
    command curl -sk --max-time 10 "https://127.0.0.1:$1/metrics" |
        awk '/^cai_http_requests_total\{endpoint="chat_completions"/ { n += $2 } END { print n + 0 }'
}
ASK='{"model": "qwen", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4, "seed": 1}'
# burst N TAG: N requests, four at a time, through cai proxy; prints how many got 200.
burst() {
    local i
    for i in $(seq 1 "$1"); do
        curl -s -o "$2-$i.json" -w '%{http_code}\n' "http://127.0.0.1:$P/v1/chat/completions" \
            -H 'Content-Type: application/json' -d "$ASK" > "$2-$i.code" &
        [ $((i % 4)) = 0 ] && wait
    done
    wait
    cat "$2"-*.code | grep -c '^200$'
}

n=$(burst 16 before)
a1=$(answered "$R1") a2=$(answered "$R2")
[ "$n" = 16 ] && pass all_answered_through_the_balancer || fail all_answered_through_the_balancer "$n of 16"
[ "$a1" -gt 0 ] && [ "$a2" -gt 0 ] && [ $((a1 + a2)) = 16 ] && pass requests_spread_over_both ||
    fail requests_spread_over_both "replica1 $a1, replica2 $a2"
certs=$(grep -c "verified https://127.0.0.1:$LB: simulated TEE" proxy.log)
[ "$certs" = 2 ] && grep -q "model sha256:$DIGEST" proxy.log && pass proxy_verified_each_replica ||
    fail proxy_verified_each_replica "$certs certificates printed: $(cat proxy.log)"
out=$(curl -sN "http://127.0.0.1:$P/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}')
echo "$out" | grep -q '^data: \[DONE\]' && pass stream_through_the_balancer ||
    fail stream_through_the_balancer "$(echo "$out" | tail -n 3)"

# One replica dies: the health check takes it out, the proxy's connections
# to it are gone, and requests go on at the other.
kill -9 "$PID1"
wait "$PID1" 2>/dev/null
wait_status replica1 DOWN && pass dead_replica_marked_down || fail dead_replica_marked_down "$(status replica1)"
b2=$(answered "$R2")
n=$(burst 12 after)
[ "$n" = 12 ] && pass requests_go_on_after_a_replica_died ||
    fail requests_go_on_after_a_replica_died "$n of 12: $(cat after-*.json | head -c 600)"
[ $(($(answered "$R2") - b2)) = 12 ] && pass survivor_answered_them ||
    fail survivor_answered_them "replica2 answered $(($(answered "$R2") - b2))"

# No byte of plaintext in HAProxy: what it forwards is the replicas' TLS,
# their attested certificates included.
cert=$(echo | openssl s_client -connect "127.0.0.1:$LB" -tls1_3 2>/dev/null | openssl x509 -noout -text 2>/dev/null)
echo "$cert" | grep -q "2.23.133.5.4.9" && pass balancer_passes_attested_tls ||
    fail balancer_passes_attested_tls "no RA-TLS extension in the certificate HAProxy passed on"
finish
