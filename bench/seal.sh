#!/usr/bin/env bash
# bench/seal.sh - sealing and unsealing throughput next to OpenSSL's AES-256-GCM.
#
#   bench/seal.sh [SIZE] [THREADS]     (defaults: 2G, 1,2)
#
# Prints `cai bench seal` (best of 3), then the single-core figure of
# `openssl speed -evp aes-256-gcm` at 16 KiB blocks, and for each thread count
# the ratio unseal / (openssl x threads). Goal: unseal >= 70% of that. Also
# unseal with the digest check (the sealed boot's path) against unseal alone.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
threads=${2:-1,2}
[ -x build/cai ] || make -j2 >/dev/null

out=$(build/cai bench seal --size "$size" --threads "$threads" --repeat 3)
echo "$out" | grep -v '^result '

ossl=$(openssl speed -elapsed -seconds 3 -bytes 16384 -evp aes-256-gcm 2>/dev/null |
       awk '/^AES-256-GCM|^aes-256-gcm/ {v=$NF; sub(/k$/, "", v); print v * 1000 / 1e9}')
printf '\nopenssl speed -evp aes-256-gcm (16 KiB blocks, 1 core): %.2f GB/s\n\n' "$ossl"
printf '%-8s %14s %18s %20s %22s\n' threads "goal (70%)" "unseal->memory" "decrypt (warm mem)" \
    "unseal+sha256 (% of)"
echo "$out" | grep '^result ' | while read -r _ t _ u v w _; do
    t=${t#threads=}; u=${u#unseal_gbps=}; v=${v#unseal_verify_gbps=}; w=${w#decrypt_warm_gbps=}
    awk -v t="$t" -v u="$u" -v v="$v" -v w="$w" -v o="$ossl" 'BEGIN {
        printf "%-8s %9.2f GB/s %8.2f (%3.0f%%) %10.2f (%3.0f%%) %14.2f (%3.0f%%)\n",
               t, 0.7 * o * t, u, 100 * u / (o * t), w, 100 * w / (o * t), v, 100 * v / u }'
done
fill=$(echo "$out" | sed -n 's/.*fill_gbps=\([0-9.]*\).*/\1/p' | head -1)
echo
echo "unseal->memory writes fresh memory (as the boot does: each chunk's ciphertext leaves"
echo "the page cache once read, and the next chunks take its pages); this machine fills"
echo "fresh memory at $fill GB/s. 'decrypt (warm mem)' is the same decryption into memory already"
echo "faulted in: the speed of the crypto pipeline itself. 'unseal+sha256' also"
echo "checks the plaintext's SHA-256 (in chunk order, on whichever thread holds the next"
echo "chunk, overlapped with decryption), as a sealed boot does; in brackets, as a share"
echo "of unseal->memory alone."
