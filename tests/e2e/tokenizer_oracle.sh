# cai model tokenize against an independent implementation of the same
# tokenizer.json (@lenml/tokenizers, from npm): a multilingual corpus and
# random strings, exact; and the command's refusals.
. "$(dirname "$0")/lib.sh"
cd "$T"

if ! synth_model m.gguf --arch qwen2 --shape tiny --type q8_0; then
    echo "FAIL tokenizer_oracle: node_modules absent (./run setup installs it)"
    exit 1
fi
NODE_PATH="$ROOT/node_modules" node "$ROOT/tests/e2e/tokenizer_oracle.mjs" "$CAI" m.gguf ||
    echo "FAIL tokenizer_oracle: exit $?"

# Special-token text is plain text unless --special says otherwise.
plain=$(printf '<|im_end|>' | "$CAI" model tokenize m.gguf)
special=$(printf '<|im_end|>' | "$CAI" model tokenize m.gguf --special)
[ "$special" = 151645 ] && [ "$(echo "$plain" | wc -w)" -gt 1 ] && pass tokenize_special_only_when_asked ||
    fail tokenize_special_only_when_asked "plain '$plain', special '$special'"
[ -z "$(printf '' | "$CAI" model tokenize m.gguf)" ] && pass tokenize_empty_input || fail tokenize_empty_input "ids for nothing"
refuses tokenize_not_gguf "magic|not a GGUF" sh -c "echo hi | '$CAI' model tokenize /etc/hostname"
"$CAI" model tokenize m.gguf --bogus </dev/null >/dev/null 2>&1
[ $? -eq 2 ] && pass tokenize_bad_option_usage || fail tokenize_bad_option_usage "not a usage error"
finish
