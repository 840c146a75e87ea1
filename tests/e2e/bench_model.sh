# cai bench -m on a tiny synthetic model: the weights in memory (the default;
# Q8_0 and Q4_0 rewritten into the x16 layout at the AVX-512 VNNI level) and
# mapped from the file (--mmap) both give the figures, for each type that has
# its own kernels; bad arguments are refused.
. "$(dirname "$0")/lib.sh"
cd "$T"

for type in q4_0 q4_k_m q8_0; do
    if ! synth_model "m-$type.gguf" --arch qwen2 --shape tiny --type "$type"; then
        echo "SKIP bench_model_$type: node_modules absent (./run setup)"
        continue
    fi
    for load in "" --mmap; do
        name="bench_${type}${load:+_mmap}" want="weights in memory, file layout"
        [ -n "$load" ] && want="weights mapped from the file, file layout"
        out=$("$CAI" bench -m "m-$type.gguf" -p 8 -n 4 -r 1 -t 2 $load 2>&1)
        # the Q8_0/Q4_0 weights in memory (q4_k_m's token_embd too) are
        # rewritten into x16 where the kernels read it
        if [ -z "$load" ] && echo "$out" | grep -q "kernels avx512-vnni"; then
            want="weights in memory, x16 layout \\(rewritten in [0-9.]+ s\\)"
        fi
        if echo "$out" | grep -qE "^result prefill_tps=[0-9.]+ decode_tps=[0-9.]+" &&
            echo "$out" | grep -qE "$want"; then
            pass "$name"
        else
            fail "$name" "$out"
        fi
    done
done
# -c: a filled context, decoded at that depth.
if [ -f m-q4_0.gguf ]; then
    out=$("$CAI" bench -m m-q4_0.gguf -p 16 -n 4 -r 1 -t 2 -c 200 2>&1)
    echo "$out" | grep -qE "^context  200 tokens \(f16 KV cache\): filled in [0-9.]+ s, then decode [0-9.]+ tokens/s" &&
        pass bench_filled_context || fail bench_filled_context "$out"
fi
refuses bench_missing_model "cannot open|No such file" "$CAI" bench -m absent.gguf -p 4 -n 2
"$CAI" bench -m x.gguf --bogus >/dev/null 2>&1
[ $? -eq 2 ] && pass bench_bad_option_usage || fail bench_bad_option_usage "not a usage error"
finish
