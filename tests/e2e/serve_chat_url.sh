# cai chat --url against a real cai serve --tee sim, driven through tmux:
# the attestation is checked first (and a wrong root, model or missing
# option refused), replies stream, the history is sent (seen in the
# server's prompt-token counter), /clear empties it, Ctrl-C stops a reply
# and frees the server's slot, /exit leaves; unreachable servers and HTTP
# errors give clear messages.
. "$(dirname "$0")/lib.sh"
cd "$T"

command -v tmux >/dev/null || { echo "SKIP serve_chat_url: tmux absent"; exit 0; }
"$CAI" attest sim-init sim >/dev/null && "$CAI" attest sim-init other >/dev/null
echo "sk-test-$$" > key
start_serve serve_chat_url --tee sim --sim-dir sim --api-key-file key && pass health_200 || fail health_200 "$(cat serve.log)"
DIGEST=$(sha m.gguf)

# Refusals before any conversation (stdin is empty: nothing is sent).
usage_err=$("$CAI" chat --url "$U" 2>&1 </dev/null); rc=$?
[ "$rc" = 2 ] && echo "$usage_err" | grep -q 'checks the server.s attestation first' && pass needs_attestation_option ||
    fail needs_attestation_option "exit $rc: $usage_err"
nobody=$(free_port)
refuses unreachable "cannot reach http://127.0.0.1:$nobody.*is cai serve running" \
    "$CAI" chat --url "http://127.0.0.1:$nobody" --trust-sim sim
refuses http_401_without_key "answered HTTP 401: Incorrect or missing API key" "$CAI" chat --url "$U" --trust-sim sim
refuses sim_untrusted_without_trust_sim "does not verify \(root untrusted\)" \
    "$CAI" chat --url "$U" --collateral sim/collateral.json --api-key-file key
refuses other_sim_root "does not verify" "$CAI" chat --url "$U" --trust-sim other --api-key-file key
refuses other_model_digest "serves the model sha256:$DIGEST, not" \
    "$CAI" chat --url "$U" --trust-sim sim --api-key-file key --model-digest "$(printf '%064d' 0)"
refuses bad_url "must start with http" "$CAI" chat --url "ftp://127.0.0.1:$PORT" --insecure-no-attest

export TMUX_TMPDIR="$T"
screen() { tmux capture-pane -p -t "$1"; }
wait_for() { for _ in $(seq 1 150); do screen "$1" | grep -q -- "$2" && return 0; sleep 0.1; done; return 1; }
prompts() { screen "$1" | grep -c '^>'; }
wait_prompts() { for _ in $(seq 1 150); do [ "$(prompts "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
prompt_tokens() { curl -s "$U/metrics" | awk '$1 == "cai_prompt_tokens_total" { print $2 }'; }

tmux new-session -d -s chat -x 200 -y 50 "'$CAI' chat --url $U --trust-sim sim --api-key-file key --model-digest $DIGEST -n 6 --seed 1 --temp 0; echo CHAT-EXITED rc=\$?; sleep 30"
wait_for chat 'attested: simulated TEE' && screen chat | grep -q "model m sha256:$DIGEST (as expected)" &&
    pass tmux_attested || fail tmux_attested "$(screen chat)"
wait_prompts chat 1 && pass tmux_prompt || fail tmux_prompt "$(screen chat)"
p0=$(prompt_tokens)
tmux send-keys -t chat 'Hello there' Enter
wait_prompts chat 2 && pass tmux_reply || fail tmux_reply "$(screen chat)"
p1=$(prompt_tokens)
tmux send-keys -t chat 'Hello there' Enter
wait_prompts chat 3 || fail tmux_second_reply "$(screen chat)"
p2=$(prompt_tokens)
tmux send-keys -t chat '/clear' Enter
wait_for chat 'conversation cleared' && pass tmux_clear || fail tmux_clear "$(screen chat)"
tmux send-keys -t chat 'Hello there' Enter
wait_prompts chat 5 || fail tmux_reply_after_clear "$(screen chat)"
p3=$(prompt_tokens)
# The second turn carries the first (more prompt tokens); after /clear the
# prompt is the first one again.
[ $((p2 - p1)) -gt $((p1 - p0)) ] && pass tmux_history_sent || fail tmux_history_sent "prompt tokens $p0 $p1 $p2"
[ $((p3 - p2)) -eq $((p1 - p0)) ] && pass tmux_clear_empties_history || fail tmux_clear_empties_history "prompt tokens $p0 $p1 $p2 $p3"
tmux send-keys -t chat '/exit' Enter
wait_for chat "CHAT-EXITED rc=0" && pass tmux_exit || fail tmux_exit "$(screen chat)"

# Ctrl-C stops a long reply: the client closes the stream, the server
# cancels the generation (counted as a 4xx: 499) and frees the slot.
cancelled() { curl -s "$U/metrics" | awk -F' ' '$1 == "cai_http_requests_total{endpoint=\"chat_completions\",code=\"4xx\"}" { print $2 }'; }
# Greedy, so deterministic: first check the reply cannot end by itself early.
out=$(curl -s "$U/v1/chat/completions" -H "Authorization: Bearer $(cat key)" \
    -d '{"messages":[{"role":"user","content":"Tell me a long story"}],"max_tokens":1000,"temperature":0}')
echo "$out" | grep -q '"finish_reason":"length"' && pass precondition_long_greedy_reply ||
    fail precondition_long_greedy_reply "the test model ends this reply early: pick another prompt"
c0=$(cancelled)
tmux new-session -d -s long -x 200 -y 50 "'$CAI' chat --url $U --trust-sim sim --api-key-file key -n 4000 --temp 0; echo CHAT-EXITED rc=\$?; sleep 30"
wait_prompts long 1 || fail tmux_long_prompt "$(screen long)"
tmux send-keys -t long 'Tell me a long story' Enter
started=0
for _ in $(seq 1 150); do
    [ -n "$(screen long | sed -n '/^> Tell me a long story/,$p' | sed 1d | tr -d ' \n')" ] && { started=1; break; }
    sleep 0.1
done
[ "$started" = 1 ] || fail tmux_stream_started "$(screen long)"
tmux send-keys -t long C-c
wait_for long '\[stopped\]' && pass tmux_ctrl_c_stops || fail tmux_ctrl_c_stops "$(screen long | tail -5)"
wait_prompts long 2 && pass tmux_prompt_after_stop || fail tmux_prompt_after_stop "$(screen long | tail -5)"
freed=0
for _ in $(seq 1 100); do
    [ "$(cancelled)" -gt "$c0" ] && curl -s "$U/metrics" | grep -q '^cai_requests_active 0' && { freed=1; break; }
    sleep 0.1
done
[ "$freed" = 1 ] && pass server_cancelled_and_freed || fail server_cancelled_and_freed "$(curl -s "$U/metrics" | grep -E 'active|4xx')"
tmux send-keys -t long '/exit' Enter
wait_for long "CHAT-EXITED rc=0" && pass tmux_long_exit || fail tmux_long_exit "$(screen long)"

stop_serve
finish
