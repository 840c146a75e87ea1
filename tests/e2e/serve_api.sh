# cai serve on a real port, driven with curl as OpenAI clients drive it.
. "$(dirname "$0")/lib.sh"
cd "$T"

start_serve serve_api --slots 4 --queue 64 --ctx 512 && pass health_200 || fail health_200 "$(cat serve.log)"

post() { curl -s -H 'Content-Type: application/json' "$U$1" -d "$2"; }

out=$(curl -s "$U/v1/models")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["object"]=="list" and d["data"][0]["id"]=="m"' \
    && pass models || fail models "$out"

out=$(post /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"seed":7}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["object"] == "chat.completion" and d["id"].startswith("chatcmpl-") and d["model"] == "m"
c = d["choices"][0]
assert c["message"]["role"] == "assistant" and c["finish_reason"] in ("length", "stop")
u = d["usage"]; assert u["completion_tokens"] <= 6 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
' && pass chat_completion || fail chat_completion "$out"
text1=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])')

# Streamed: SSE chunks, then usage, then [DONE]; same seed -> same text.
out=$(curl -sN "$U/v1/chat/completions" -d '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"seed":7,"stream":true,"stream_options":{"include_usage":true}}')
echo "$out" | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().split("\n") if l]
assert lines[-1] == "data: [DONE]", lines[-1]
chunks = [json.loads(l[6:]) for l in lines[:-1]]
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6
assert chunks[-2]["choices"][0]["finish_reason"] in ("length", "stop")
print("".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]))
' > stream.txt && pass chat_stream || fail chat_stream "$out"
[ "$(cat stream.txt)" = "$text1" ] && pass stream_equals_nonstream || fail stream_equals_nonstream "'$(cat stream.txt)' vs '$text1'"

out=$(post /v1/completions '{"model":"m","prompt":"Once upon","max_tokens":4,"seed":1,"logprobs":2}')
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = d["choices"][0]
assert d["object"] == "text_completion" and isinstance(c["text"], str)
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
        if ok and e.code != 413:
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

# Metrics in Prometheus text format.
curl -s "$U/metrics" | grep -q '^cai_time_to_first_token_seconds_count [1-9]' && pass metrics || fail metrics "no ttft"
kill -0 $SERVER 2>/dev/null && pass server_alive || fail server_alive "the server died: $(tail -5 serve.log)"

# Without --tee there is no evidence to give: a clear 501, not a fake quote.
code=$(curl -s -o att.json -w '%{http_code}' "$U/v1/attestation?nonce=$(openssl rand -hex 32)")
[ "$code" = 501 ] && python3 -c '
import json
e = json.load(open("att.json"))["error"]
assert e["code"] == "no_tee_configured" and "without a TEE" in e["message"] and e["type"] == "server_error", e
' && pass attestation_without_tee_501 || fail attestation_without_tee_501 "HTTP $code $(cat att.json)"

stop_serve
finish
