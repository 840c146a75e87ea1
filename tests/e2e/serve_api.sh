# cai serve on a real port, driven with curl as OpenAI clients drive it.
. "$(dirname "$0")/lib.sh"
cd "$T"

ORIGIN=https://app.example
start_serve serve_api --slots 4 --queue 64 --ctx 512 --cors "$ORIGIN" && pass health_200 || fail health_200 "$(cat serve.log)"

post() { curl -s -H 'Content-Type: application/json' "$U$1" -d "$2"; }

# metric URL NAME: the value of one sample line of /metrics.
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
# wait_metric URL NAME VALUE: until the sample has that value.
wait_metric() {
    local i
    for i in $(seq 1 300); do
        [ "$(metric "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
# openai_error FILE STATUS TYPE: FILE holds OpenAI's error shape.
openai_error() {
    python3 - "$@" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "param", "code"}, e
assert isinstance(e["message"], str) and e["message"] and e["type"] == sys.argv[3], e
PY
}

out=$(curl -s "$U/v1/models")
echo "$out" | python3 -c '
import json, sys, time
d = json.load(sys.stdin); m = d["data"][0]
assert d["object"] == "list" and m["id"] == "m" and m["object"] == "model" and m["owned_by"] == "cai"
assert type(m["created"]) is int and abs(m["created"] - time.time()) < 3600, m
' && pass models || fail models "$out"

out=$(post /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"seed":7}')
echo "$out" | python3 -c '
import json, sys, time
d = json.load(sys.stdin)
assert d["object"] == "chat.completion" and d["id"].startswith("chatcmpl-") and d["model"] == "m"
assert type(d["created"]) is int and abs(d["created"] - time.time()) < 3600, d["created"]
c = d["choices"][0]
assert c["message"]["role"] == "assistant" and c["finish_reason"] in ("length", "stop")
u = d["usage"]; assert u["completion_tokens"] <= 6 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
' && pass chat_completion || fail chat_completion "$out"
text1=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])')

# The model a request names: the served id, or nothing (the served model, as
# vLLM and llama.cpp answer); any other name is OpenAI's 404 model_not_found,
# on both endpoints, streamed or not, and from /v1/models/NAME.
# model_not_found FILE NAME: FILE is that 404's body for model NAME.
model_not_found() {
    python3 - "$@" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert set(e) == {"message", "type", "param", "code"}, e
assert e["type"] == "invalid_request_error" and e["param"] == "model" and e["code"] == "model_not_found", e
assert sys.argv[2][:20] in e["message"] and "does not exist" in e["message"], e
PY
}
for ep in chat/completions completions; do
    [ "$ep" = completions ] && what='"prompt":"Hi"' || what='"messages":[{"role":"user","content":"Hi"}]'
    for stream in false true; do
        code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/$ep" -d "{\"model\":\"gpt-4o\",$what,\"max_tokens\":2,\"stream\":$stream}")
        [ "$code" = 404 ] && model_not_found nm.json gpt-4o && pass "unknown_model_404_${ep%%/*}_stream_$stream" \
            || fail "unknown_model_404_${ep%%/*}_stream_$stream" "HTTP $code $(cat nm.json)"
    done
    code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/$ep" -d "{$what,\"max_tokens\":2}")
    [ "$code" = 200 ] && grep -q '"model":"m"' nm.json && pass "no_model_served_${ep%%/*}" \
        || fail "no_model_served_${ep%%/*}" "HTTP $code $(cat nm.json)"
done
code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/chat/completions" -d '{"model":"M","messages":[{"role":"user","content":"Hi"}],"max_tokens":2}')
[ "$code" = 404 ] && model_not_found nm.json M && pass model_name_case_sensitive || fail model_name_case_sensitive "HTTP $code $(cat nm.json)"
long=$(python3 -c 'print("\u00e9" * 300)')
code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/chat/completions" -d "{\"model\":\"$long\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")
[ "$code" = 404 ] && model_not_found nm.json "$long" && pass unknown_long_utf8_model_404 || fail unknown_long_utf8_model_404 "HTTP $code $(head -c 300 nm.json)"
code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/models/m")
[ "$code" = 200 ] && grep -q '"id":"m"' nm.json && pass model_retrieve || fail model_retrieve "HTTP $code $(cat nm.json)"
code=$(curl -s -o nm.json -w '%{http_code}' "$U/v1/models/gpt-4o")
[ "$code" = 404 ] && model_not_found nm.json gpt-4o && pass model_retrieve_unknown_404 || fail model_retrieve_unknown_404 "HTTP $code $(cat nm.json)"

# Streamed: SSE chunks, then usage, then [DONE]; same seed -> same text.
out=$(curl -sN "$U/v1/chat/completions" -d '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"seed":7,"stream":true,"stream_options":{"include_usage":true}}')
echo "$out" | python3 -c '
import json, sys, time
lines = [l for l in sys.stdin.read().split("\n") if l]
assert lines[-1] == "data: [DONE]", lines[-1]
chunks = [json.loads(l[6:]) for l in lines[:-1]]
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
assert type(chunks[0]["created"]) is int and abs(chunks[0]["created"] - time.time()) < 3600
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6
assert chunks[-2]["choices"][0]["finish_reason"] in ("length", "stop")
print("".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]))
' > stream.txt && pass chat_stream || fail chat_stream "$out"
[ "$(cat stream.txt)" = "$text1" ] && pass stream_equals_nonstream || fail stream_equals_nonstream "'$(cat stream.txt)' vs '$text1'"

out=$(post /v1/completions '{"model":"m","prompt":"Once upon","max_tokens":4,"seed":1,"logprobs":2}')
echo "$out" | python3 -c '
import json, sys, time
d = json.load(sys.stdin)
c = d["choices"][0]
assert d["object"] == "text_completion" and isinstance(c["text"], str) and d["id"].startswith("cmpl-")
assert type(d["created"]) is int and abs(d["created"] - time.time()) < 3600
lp = c["logprobs"]; assert len(lp["tokens"]) == d["usage"]["completion_tokens"] and len(lp["top_logprobs"][0]) <= 2
' && pass completions_logprobs || fail completions_logprobs "$out"

out=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"logprobs":true,"top_logprobs":3}')
echo "$out" | python3 -c '
import json, sys, math
d = json.load(sys.stdin)
e = d["choices"][0]["logprobs"]["content"]
assert len(e) == d["usage"]["completion_tokens"] and len(e[0]["top_logprobs"]) == 3
assert e[0]["logprob"] <= 0 and e[0]["top_logprobs"][0]["logprob"] >= e[0]["top_logprobs"][1]["logprob"]
' && pass chat_logprobs || fail chat_logprobs "$out"

# response_format json_object: the reply is (a prefix of) a JSON object, and
# a complete one when it stops by itself.
out=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"JSON please"}],"max_tokens":60,"seed":5,"temperature":0.2,"response_format":{"type":"json_object"}}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = d["choices"][0]; t = c["message"]["content"]
assert t.lstrip().startswith("{"), t
if c["finish_reason"] == "stop":
    assert isinstance(json.loads(t), dict), t
else:
    try:
        json.loads(t)
    except json.JSONDecodeError as e:  # only "more input needed" errors are acceptable
        ok = e.pos >= len(t.rstrip()) or e.msg.startswith("Unterminated string")
        assert ok, (e.msg, e.pos, t)
' && pass json_object_mode || fail json_object_mode "$out"

# Stop strings cut the text before them.
full=$(post /v1/completions '{"prompt":"a","max_tokens":12,"seed":3,"temperature":0}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")')
stop=$(printf '%s' "$full" | python3 -c 'import sys; t=sys.stdin.read(); print(t[len(t)//2:len(t)//2+3], end="")')
cut=$(python3 -c 'import json,sys; print(json.dumps({"prompt":"a","max_tokens":12,"seed":3,"temperature":0,"stop":[sys.argv[1]]}))' "$stop")
got=$(post /v1/completions "$cut" | python3 -c 'import json,sys; d=json.load(sys.stdin)["choices"][0]; print(d["finish_reason"]+"|"+d["text"], end="")')
want="stop|${full%%"$stop"*}"
[ "$got" = "$want" ] && pass stop_string || fail stop_string "got '$got' want '$want' (stop '$stop')"

# 16 concurrent streams, each with its own seed: same text as alone.
for i in $(seq 1 16); do
    post /v1/completions "{\"prompt\":\"Tell $i\",\"max_tokens\":8,\"seed\":$i}" > "alone.$i" || true
done
for i in $(seq 1 16); do
    curl -sN "$U/v1/completions" -d "{\"prompt\":\"Tell $i\",\"max_tokens\":8,\"seed\":$i,\"stream\":true}" > "conc.$i" &
done
wait_ok=1
for j in $(jobs -p); do [ "$j" = "$SERVER" ] || wait "$j" || wait_ok=0; done
same=0
for i in $(seq 1 16); do
    a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"], end="")' "alone.$i")
    b=$(python3 -c '
import json, sys
t = ""
for l in open(sys.argv[1]).read().split("\n"):
    if l.startswith("data: {"):
        c = json.loads(l[6:])["choices"]
        if c: t += c[0]["text"]
print(t, end="")' "conc.$i")
    [ "$a" = "$b" ] && same=$((same + 1))
done
[ "$same" = 16 ] && pass concurrent_16_same_as_alone || fail concurrent_16_same_as_alone "$same of 16 matched"

# A client that drops mid-stream frees its slot.
curl -sN --max-time 0.5 "$U/v1/completions" -d '{"prompt":"x","max_tokens":100000,"stream":true}' > /dev/null 2>&1
freed=0
for i in $(seq 1 50); do
    active=$(curl -s "$U/metrics" | awk '/^cai_requests_active/ {print $2}')
    [ "$active" = 0 ] && { freed=1; break; }
    sleep 0.1
done
[ "$freed" = 1 ] && pass dropped_client_frees_slot || fail dropped_client_frees_slot "active=$active"

# 1,000 malformed requests: each a 4xx in OpenAI's error shape; then still serving.
python3 - "$U" > malformed.txt <<'PY'
import json, random, sys, urllib.request, urllib.error
u = sys.argv[1]
random.seed(1)
bodies = [b"", b"{", b"[]", b"null", b'{"messages":5}', b'{"messages":[{"role":"user"}]}',
          b'{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}',
          b'{"messages":[{"role":"user","content":"x"}],"n":3}', b'{"messages":[{"role":"user","content":"x"}],"bogus":1}',
          b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', b'{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}',
          b'{"prompt":1}', b'\x00\x01\x02', b'{"messages":[{"role":"user","content":"x"}],"stop":[1,2]}',
          b"x" * (5 << 20)]
bad = 0
for i in range(1000):
    body = bodies[i % len(bodies)]
    if i % 7 == 3:
        body = bytes(random.getrandbits(8) for _ in range(random.randint(1, 64)))
    path = "/v1/completions" if i % 5 == 0 else "/v1/chat/completions"
    req = urllib.request.Request(u + path, data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10)
        bad += 1
        print("accepted", body[:60])
    except urllib.error.HTTPError as e:
        ok = 400 <= e.code < 500
        if ok:
            err = json.loads(e.read())["error"]
            ok = isinstance(err["message"], str) and err["type"] == "invalid_request_error"
        if not ok:
            bad += 1
            print("bad answer", e.code, body[:60])
    except Exception as e:
        bad += 1
        print("error", type(e).__name__, body[:60])
print("bad", bad)
PY
grep -q '^bad 0$' malformed.txt && pass malformed_1000_4xx || fail malformed_1000_4xx "$(tail -5 malformed.txt)"
out=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"still there?"}],"max_tokens":2}')
echo "$out" | grep -q '"chat.completion"' && pass serves_after_malformed || fail serves_after_malformed "$out"

# Metrics in Prometheus text format: request counters by endpoint and
# class, the gauges, and both histograms (cumulative buckets ending in +Inf
# = _count, a positive _sum).
curl -s "$U/metrics" > metrics.txt
python3 - metrics.txt <<'PY' && pass metrics || fail metrics "$(cat metrics.txt)"
import re, sys
m = {}
for l in open(sys.argv[1]):
    if l.startswith("#") or not l.strip():
        continue
    k, v = l.rsplit(" ", 1)
    m[k] = float(v)
req = lambda ep, c: m['cai_http_requests_total{endpoint="%s",code="%s"}' % (ep, c)]
assert req("chat_completions", "2xx") >= 5, req("chat_completions", "2xx")
assert req("chat_completions", "4xx") >= 500 and req("completions", "4xx") >= 100
assert req("completions", "2xx") >= 16 + 16 + 3 and req("models", "2xx") >= 1
assert m["cai_requests_queued"] == 0 and m["cai_requests_active"] == 0 and m["cai_slots"] == 4
assert m["cai_prompt_tokens_total"] > 0 and m["cai_completion_tokens_total"] > 0
for h in ("cai_request_duration_seconds", "cai_time_to_first_token_seconds"):
    b = [(k, v) for k, v in m.items() if k.startswith(h + "_bucket{")]
    assert len(b) == 11 and b[-1][0] == h + '_bucket{le="+Inf"}', b
    vals = [v for _, v in b]
    assert vals == sorted(vals) and vals[-1] == m[h + "_count"] >= 20, (h, vals)
    assert m[h + "_sum"] > 0
PY
kill -0 $SERVER 2>/dev/null && pass server_alive || fail server_alive "the server died: $(tail -5 serve.log)"

# Without --tee there is no evidence to give: a clear 501, not a fake quote.
code=$(curl -s -o att.json -w '%{http_code}' "$U/v1/attestation?nonce=$(openssl rand -hex 32)")
[ "$code" = 501 ] && python3 -c '
import json
e = json.load(open("att.json"))["error"]
assert e["code"] == "no_tee_configured" and "without a TEE" in e["message"] and e["type"] == "server_error", e
' && pass attestation_without_tee_501 || fail attestation_without_tee_501 "HTTP $code $(cat att.json)"

# CORS: the allowed origin gets Access-Control-Allow-Origin on the
# preflight and on the answer; another origin gets none.
curl -s -D pre.h -o /dev/null -X OPTIONS -H "Origin: $ORIGIN" -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: content-type' -w '%{http_code}' "$U/v1/chat/completions" > pre.code
grep -qi "^Access-Control-Allow-Origin: $ORIGIN" pre.h && grep -qi '^Access-Control-Allow-Methods:.*POST' pre.h &&
    grep -qi '^Access-Control-Allow-Headers:.*Content-Type' pre.h && [ "$(cat pre.code)" = 204 ] \
    && pass cors_preflight || fail cors_preflight "$(cat pre.code) $(cat pre.h)"
curl -s -D post.h -o /dev/null -H "Origin: $ORIGIN" "$U/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1}'
grep -qi "^Access-Control-Allow-Origin: $ORIGIN" post.h && pass cors_post || fail cors_post "$(cat post.h)"
curl -s -D other.h -o /dev/null -X OPTIONS -H 'Origin: https://evil.example' \
    -H 'Access-Control-Request-Method: POST' "$U/v1/chat/completions"
curl -s -D other2.h -o /dev/null -H 'Origin: https://evil.example' "$U/v1/models"
! grep -qi '^Access-Control-Allow-Origin' other.h other2.h && pass cors_other_origin_refused \
    || fail cors_other_origin_refused "$(cat other.h other2.h)"

# A prompt longer than the context: a real 400, streamed or not.
python3 -c 'import json; print(json.dumps({"prompt": "hello " * 2000, "stream": True}))' > long.json
code=$(curl -s -o long.out -w '%{http_code}' "$U/v1/completions" -d @long.json)
[ "$code" = 400 ] && openai_error long.out 400 invalid_request_error && grep -q context long.out \
    && pass too_long_prompt_stream_400 || fail too_long_prompt_stream_400 "HTTP $code $(head -c 300 long.out)"

# A 20 KiB header (over the 16 KiB limit): a 4xx (libevent's own page, see
# httpd.c), and the server keeps serving.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20480 /dev/zero | tr '\0' a)" "$U/health")
case "$code" in 4??) pass big_header_4xx ;; *) fail big_header_4xx "HTTP $code" ;; esac
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ] && pass serves_after_big_header \
    || fail serves_after_big_header "$(tail -3 serve.log)"

stop_serve

# extra_serve LOG ARGS...: another server of m.gguf (sets XU, XSERVER).
extra_serve() {
    local log="$1"; shift
    XU=http://127.0.0.1:$(free_port)
    "$CAI" serve -m m.gguf --port "${XU##*:}" "$@" > "$log" 2>&1 &
    XSERVER=$!
    trap 'kill $XSERVER 2>/dev/null; wait $XSERVER 2>/dev/null; rm -rf "$T"' EXIT
    wait_http "$XU/health" 30
}
# stop_extra LOG: SIGTERM, exit 0, no sanitizer report.
stop_extra() {
    kill -TERM $XSERVER
    wait $XSERVER
    local rc=$?
    [ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' "$1" && pass "clean_shutdown_$1" \
        || fail "clean_shutdown_$1" "exit $rc: $(grep -E -A5 'Sanitizer|runtime error' "$1" | head -20)"
}
LONG='{"prompt":"x","max_tokens":100000,"stream":true}'
HI='"messages":[{"role":"user","content":"Hi"}],"max_tokens":2'

# --alias and --max-tokens-default, as ./run demo starts the server: the
# tutorial's own request (model "Qwen", no max_tokens) is served and ends
# after the default; /v1/models lists the id only; an explicit max_tokens is
# the client's; other names are still refused.
extra_serve alias.log --alias Qwen --alias gpt-4o-mini --max-tokens-default 5 || fail alias_server "$(cat alias.log)"
out=$(curl -s "$XU/v1/chat/completions" -H 'Content-Type: application/json' -d '{"model": "Qwen", "messages": [{"role": "user", "content": "Hello!"}]}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); u = d["usage"]; c = d["choices"][0]
assert d["model"] == "m", d["model"]
assert u["completion_tokens"] <= 5 and (c["finish_reason"] == "length") == (u["completion_tokens"] == 5), d
' && pass alias_tutorial_request || fail alias_tutorial_request "$out"
out=$(curl -s "$XU/v1/completions" -d '{"model": "gpt-4o-mini", "prompt": "Once upon a time"}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); assert d["model"] == "m" and d["usage"]["completion_tokens"] <= 5, d
' && pass alias_completion_default_cap || fail alias_completion_default_cap "$out"
out=$(curl -s "$XU/v1/chat/completions" -d '{"model": "Qwen", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 12, "temperature": 0}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); u = d["usage"]; c = d["choices"][0]
assert u["completion_tokens"] > 5 or c["finish_reason"] == "stop", d
' && pass alias_explicit_max_tokens || fail alias_explicit_max_tokens "$out"
out=$(curl -s "$XU/v1/models")
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); assert [m["id"] for m in d["data"]] == ["m"], d
' && pass alias_models_lists_id || fail alias_models_lists_id "$out"
code=$(curl -s -o nm.json -w '%{http_code}' "$XU/v1/models/Qwen")
[ "$code" = 200 ] && grep -q '"id":"m"' nm.json && pass alias_model_retrieve || fail alias_model_retrieve "HTTP $code $(cat nm.json)"
code=$(curl -s -o nm.json -w '%{http_code}' "$XU/v1/chat/completions" -d '{"model": "qwen", "messages": [{"role": "user", "content": "Hello!"}]}')
[ "$code" = 404 ] && model_not_found nm.json qwen && pass alias_other_name_404 || fail alias_other_name_404 "HTTP $code $(cat nm.json)"
stop_extra alias.log
timeout 20 "$CAI" serve -m m.gguf --port 0 --alias "" 2>/dev/null; [ $? = 2 ] && pass alias_empty_usage_error || fail alias_empty_usage_error "not exit 2"
timeout 20 "$CAI" serve -m m.gguf --port 0 --max-tokens-default 0 2>/dev/null; [ $? = 2 ] && pass max_tokens_default_0_usage_error \
    || fail max_tokens_default_0_usage_error "not exit 2"

# Refusals by the scheduler are real HTTP answers in OpenAI's shape, streamed
# or not: one slot, a queue of one, both taken (a 32768-token generation
# runs for minutes on this model; its client drops it at the end).
extra_serve limit.log --slots 1 --queue 1 --ctx 32768 || fail limit_server "$(cat limit.log)"
curl -sN "$XU/v1/completions" -d "$LONG" > /dev/null 2>&1 & C1=$!
wait_metric "$XU" cai_requests_active 1 || fail limit_running "$(metric "$XU" cai_requests_active)"
curl -sN "$XU/v1/completions" -d "$LONG" > /dev/null 2>&1 & C2=$!
wait_metric "$XU" cai_requests_queued 1 && pass queued_gauge || fail queued_gauge "$(metric "$XU" cai_requests_queued)"
for stream in false true; do
    code=$(curl -s -D busy.h -o busy.json -w '%{http_code}' "$XU/v1/chat/completions" -d "{$HI,\"stream\":$stream}")
    [ "$code" = 429 ] && openai_error busy.json 429 rate_limit_error && grep -qi '^Content-Type: application/json' busy.h \
        && pass "queue_full_429_stream_$stream" || fail "queue_full_429_stream_$stream" "HTTP $code $(cat busy.json)"
done
[ "$(metric "$XU" 'cai_http_requests_total{endpoint="chat_completions",code="4xx"}')" = 2 ] \
    && pass queue_full_counted || fail queue_full_counted "$(curl -s "$XU/metrics" | grep chat_completions)"
kill $C1 $C2 2>/dev/null; wait $C1 $C2 2>/dev/null
wait_metric "$XU" cai_requests_active 0 && wait_metric "$XU" cai_requests_queued 0 \
    && pass dropped_clients_free_slot_and_queue || fail dropped_clients_free_slot_and_queue "$(curl -s "$XU/metrics" | grep requests_)"
stop_extra limit.log

# --queue 0 means no waiting: with the one slot busy, the next request gets 429.
extra_serve noqueue.log --slots 1 --queue 0 --ctx 32768 || fail noqueue_server "$(cat noqueue.log)"
curl -sN "$XU/v1/completions" -d "$LONG" > /dev/null 2>&1 & C1=$!
wait_metric "$XU" cai_requests_active 1 || fail noqueue_running "$(metric "$XU" cai_requests_active)"
code=$(curl -s -o busy.json -w '%{http_code}' "$XU/v1/chat/completions" -d "{$HI}")
[ "$code" = 429 ] && openai_error busy.json 429 rate_limit_error && pass queue_0_means_none_wait \
    || fail queue_0_means_none_wait "HTTP $code $(cat busy.json)"
kill $C1 2>/dev/null; wait $C1 2>/dev/null
wait_metric "$XU" cai_requests_active 0
code=$(curl -s -o ok.json -w '%{http_code}' "$XU/v1/chat/completions" -d "{$HI}")
[ "$code" = 200 ] && pass queue_0_serves_when_free || fail queue_0_serves_when_free "HTTP $code $(cat ok.json)"
stop_extra noqueue.log
finish
