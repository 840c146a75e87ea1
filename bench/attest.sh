#!/usr/bin/env bash
# bench/attest.sh - quote verifications per second with the collateral cached,
# next to OpenSSL's ECDSA P-256 verify rate on the same machine (printed, never
# asserted).
#
#   bench/attest.sh [SECONDS]     (default 3)
#
# One full verification (attest_verify_claims) checks about 15 ECDSA P-256
# signatures: the PCK chain (leaf, PCK CA, root self-signature), both CRLs, the
# QE report, the quote, and for the TCB info and the QE identity each their
# chain (TCB signing cert, root self-signature), the root CRL and the document.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
[ -x build/cai ] || make -j2 >/dev/null

sim=$(build/cai bench attest --seconds "$secs")
echo "$sim" | grep -v '^result '
D=../shared/data/tdx
[ -n "${CAI_SHARED_DATA:-}" ] && D=$CAI_SHARED_DATA/tdx
real=""
if [ -f "$D/tdx_quote" ]; then
    real=$(build/cai bench attest --seconds "$secs" --quote "$D/tdx_quote" \
        --collateral "$D/tdx_quote_collateral.json" --at "$(date -d 2025-06-20T12:00:00Z +%s)")
    echo "$real" | grep -v '^result ' | sed 's/given quote/Intel v4 sample quote/'
fi

ossl=$(openssl speed -seconds "$secs" ecdsap256 2>/dev/null | awk '/nistp256/ {print $NF}')
printf '\nopenssl speed -seconds %s ecdsap256: %s verify/s (1 core)\n' "$secs" "$ossl"
for r in "$sim" "$real"; do
    [ -n "$r" ] || continue
    v=$(echo "$r" | sed -n 's/.*verify_per_s=\([0-9.]*\).*/\1/p')
    awk -v v="$v" -v o="$ossl" 'BEGIN {
        printf "quote verifications/s %.1f = 1 per %.1f ECDSA verifications (about 15 are signature checks proper)\n", v, o / v }'
done
