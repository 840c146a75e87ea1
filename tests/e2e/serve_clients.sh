# Real clients against cai serve: the official openai npm SDK, and the
# terminal chat (cai chat -m) driven through tmux.
. "$(dirname "$0")/lib.sh"
cd "$T"

# In the simulated TEE, as ./run demo serves (the README's attestation example).
"$CAI" attest sim-init sim >/dev/null
start_serve serve_clients --tee sim --sim-dir sim && pass health_200 || fail health_200 "$(cat serve.log)"
NODE_PATH="$ROOT/node_modules" node "$ROOT/tests/e2e/openai_sdk.mjs" "$U" m 2>&1 ||
    echo "FAIL openai_sdk: exit $?"

# The curl examples of the README, as printed there (port and model swapped in).
# (-sf: quiet, and a failure exit status on any HTTP error)
sed -n '/^curl /,/^$/p' "$ROOT/README.md" | grep '^curl ' | sed "s/7860/$PORT/g; s/\"qwen\"/\"m\"/g; s/^curl /curl -sf /" > readme_curl.sh
n=$(grep -c '^curl ' readme_curl.sh)
if [ "$n" -gt 0 ] && bash -e readme_curl.sh > readme_out.txt 2>&1; then
    pass "readme_curl_examples_$n"
else
    fail readme_curl_examples "$(head -c 1000 readme_out.txt)"
fi

# cai chat -m in a terminal: history, /clear, /exit.
if command -v tmux >/dev/null; then
    export TMUX_TMPDIR="$T"
    tmux new-session -d -s chat -x 160 -y 40 "'$CAI' chat -m m.gguf -n 6 --seed 1 --temp 0; echo CHAT-EXITED; sleep 30"
    screen() { tmux capture-pane -p -t chat; }
    wait_for() { for _ in $(seq 1 100); do screen | grep -q "$1" && return 0; sleep 0.1; done; return 1; }
    wait_for '^>' && pass tmux_chat_prompt || fail tmux_chat_prompt "$(screen)"
    tmux send-keys -t chat 'Hello there' Enter
    for _ in $(seq 1 100); do [ "$(screen | grep -c '^>')" -ge 2 ] && break; sleep 0.1; done
    [ "$(screen | grep -c '^>')" -ge 2 ] && pass tmux_chat_reply || fail tmux_chat_reply "$(screen)"
    tmux send-keys -t chat '/clear' Enter
    wait_for 'conversation cleared' && pass tmux_chat_clear || fail tmux_chat_clear "$(screen)"
    tmux send-keys -t chat '/exit' Enter
    wait_for 'CHAT-EXITED' && pass tmux_chat_exit || fail tmux_chat_exit "$(screen)"
else
    echo "SKIP tmux_chat: tmux absent"
fi

stop_serve
finish
