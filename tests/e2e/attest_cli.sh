# cai attest: the simulated TEE end to end, and the public Intel quotes.
. "$(dirname "$0")/lib.sh"
cd "$T"

check sim_init "$CAI" attest sim-init sim
check sim_quote "$CAI" attest quote --tee sim --sim sim --report-data 0a0b0c -o q.bin
out=$("$CAI" attest verify q.bin --collateral sim/collateral.json --trust-sim sim --json)
echo "$out" | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["verified"] is True and c["tee"] == "sim" and c["tcb_status"] == "UpToDate", c
assert c["report_data"].startswith("0a0b0c") and c["debug"] is False
' && pass sim_quote_verifies || fail sim_quote_verifies "$out"
refuses sim_not_trusted_by_default "root untrusted" "$CAI" attest verify q.bin --collateral sim/collateral.json
cp q.bin t.bin && flip_byte t.bin 300
refuses tampered_body "signature" "$CAI" attest verify t.bin --collateral sim/collateral.json --trust-sim sim
"$CAI" attest sim-init other >/dev/null
refuses other_sim_root "root untrusted|PCK chain" "$CAI" attest verify q.bin --collateral sim/collateral.json --trust-sim other
refuses sim_init_no_overwrite "exist" "$CAI" attest sim-init sim
# --tee tdx (the default) asks the guest kernel; here there is none, or a
# configfs directory whose entries have no tdx_guest provider: refused, no file.
CAI_TSM_REPORT_DIR=/nonexistent/tsm CAI_TDX_GUEST_DEVICE=/nonexistent/dev \
    refuses tdx_quote_no_guest "no TDX guest interface" "$CAI" attest quote --report-data 01 -o tdx.bin
[ ! -e tdx.bin ] && pass tdx_quote_no_file || fail tdx_quote_no_file "tdx.bin written"
mkdir tsm
CAI_TSM_REPORT_DIR=$PWD/tsm refuses tdx_quote_no_provider "provider" "$CAI" attest quote --tee tdx -o tdx.bin
[ -z "$(ls tsm)" ] && pass tdx_quote_entry_removed || fail tdx_quote_entry_removed "$(ls tsm)"
"$CAI" attest quote --tee sim -o s.bin 2>/dev/null; [ $? -eq 2 ] && pass quote_sim_needs_dir || fail quote_sim_needs_dir "not a usage error"
"$CAI" attest inspect q.bin | grep -q 'NOT VERIFIED' && pass inspect_says_unverified || fail inspect_says_unverified "no warning"

# Collateral from a (fake) PCCS over real HTTP, cached, then offline.
echo 0 > count
python3 "$ROOT/tests/e2e/fake_pccs.py" sim port count & PCCS_PID=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat port)
out=$("$CAI" attest verify q.bin --trust-sim sim --pccs "$URL" --pccs-insecure-http --cache cache --json 2>/dev/null)
echo "$out" | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["verified"] is True and c["tee"] == "sim" and c["tcb_status"] == "UpToDate", c
assert c["advisory_ids"] == [] and c["fmspc"] == "005a51000000", c
' && [ "$(cat count)" = 4 ] && pass pccs_fetch_verifies || fail pccs_fetch_verifies "$(cat count) requests: $out"
[ -f cache/tdx-005A51000000-platform.json ] && pass pccs_cached || fail pccs_cached "$(ls cache)"
check pccs_from_cache "$CAI" attest verify q.bin --trust-sim sim --pccs "$URL" --pccs-insecure-http --cache cache
[ "$(cat count)" = 4 ] && pass pccs_cache_no_requests || fail pccs_cache_no_requests "$(cat count) requests"
refuses pccs_plain_http_needs_flag "not https" "$CAI" attest verify q.bin --trust-sim sim --pccs "$URL"
kill $PCCS_PID; wait $PCCS_PID 2>/dev/null
check offline_collateral_dir "$CAI" attest verify q.bin --trust-sim sim --collateral cache
refuses pccs_down "PCCS|collateral unavailable" "$CAI" attest verify q.bin --trust-sim sim --pccs "$URL" --pccs-insecure-http
# Policy verdicts.
echo '{"tee":["sim"]}' > allow.json
echo '{"tee":["tdx"]}' > deny.json
"$CAI" attest verify q.bin --trust-sim sim --policy allow.json 2>/dev/null | grep -q 'ALLOWED' &&
    pass policy_allows || fail policy_allows "no ALLOWED"
refuses policy_refuses "claim tee = sim" "$CAI" attest verify q.bin --trust-sim sim --policy deny.json
refuses report_data_mismatch "REPORTDATA" "$CAI" attest verify q.bin --trust-sim sim --report-data 0a0b0d
check report_data_match "$CAI" attest verify q.bin --trust-sim sim --report-data 0a0b0c
# A DEBUG TD: refused by default with its own error, with or without a policy
# that leaves allow_debug at false; --allow-debug or "allow_debug": true let it through.
check sim_quote_debug "$CAI" attest quote --tee sim --sim sim --sim-debug -o d.bin
refuses debug_td_refused "debug TD: the TD's DEBUG attribute is set" "$CAI" attest verify d.bin --trust-sim sim
out=$("$CAI" attest verify d.bin --trust-sim sim --json 2>/dev/null)
echo "$out" | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["verified"] is False and c["error"] == "debug TD" and c["debug"] is True, c
' && pass debug_td_error_code || fail debug_td_error_code "$out"
refuses debug_td_refused_by_policy "debug TD" "$CAI" attest verify d.bin --trust-sim sim --policy allow.json
out=$("$CAI" attest verify d.bin --trust-sim sim --allow-debug 2>&1)
echo "$out" | grep -q 'VERIFIED' && echo "$out" | grep -q 'WARNING: --allow-debug' &&
    pass debug_td_allow_flag || fail debug_td_allow_flag "$out"
echo '{"tee":["sim"],"allow_debug":true}' > allow_debug.json
"$CAI" attest verify d.bin --trust-sim sim --policy allow_debug.json 2>/dev/null | grep -q 'ALLOWED' &&
    pass debug_td_policy_allows || fail debug_td_policy_allows "no ALLOWED"
"$CAI" attest quote --tee tdx --sim-debug -o x.bin 2>/dev/null; [ $? -eq 2 ] && [ ! -e x.bin ] &&
    pass quote_sim_debug_needs_sim || fail quote_sim_debug_needs_sim "not a usage error"
# Collateral windows: before the sim collateral was issued, after it expires.
refuses collateral_not_yet_valid "collateral not yet valid" "$CAI" attest verify q.bin --trust-sim sim --at $(( $(date +%s) - 86400 ))
refuses collateral_expired "collateral expired" "$CAI" attest verify q.bin --trust-sim sim --at $(( $(date +%s) + 40 * 86400 ))

# docs/ATTESTATION-API.md's offsets (from the start of the quote) and trust
# root, checked against real bytes: doc_offsets QUOTE VERSION.
doc_offsets() {
    python3 - "$ROOT/docs/ATTESTATION-API.md" "$CAI" "$1" "$2" <<'PY'
import json, re, subprocess, sys
doc, cai, path, version = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], int(sys.argv[4])
q = open(path, "rb").read()
assert int.from_bytes(q[0:2], "little") == version, "not a v%d quote" % version
c = json.loads(subprocess.run([cai, "attest", "inspect", path, "--json"], capture_output=True, check=True).stdout)
col = 3 if version == 4 else 4
def offsets(name):
    row = [l for l in doc.splitlines() if l.startswith("| " + name) or l.startswith("| **" + name)]
    assert len(row) == 1, "no table row for " + name
    return [int(x) for x in re.findall(r"\d+", row[0].split("|")[col + 1])]
for name, key, n in (("REPORTDATA", "report_data", 64), ("MRTD", "mr_td", 48), ("XFAM", "xfam", 8),
                     ("TDATTRIBUTES", "td_attributes", 8), ("MRCONFIGID", "mr_config_id", 48)):
    (off,) = offsets(name)
    assert q[off:off + n].hex() == c[key], "%s: the doc says %d" % (name, off)
for i, off in enumerate(offsets("RTMR0")):
    assert q[off:off + 48].hex() == c["rtmr_%d" % i], "RTMR%d: the doc says %d" % (i, off)
(off,) = offsets("`tee_type`")
assert q[off:off + 4] == bytes([0x81, 0, 0, 0]), "tee_type"
PY
}
out=$(doc_offsets q.bin 4 2>&1) && pass doc_offsets_v4 || fail doc_offsets_v4 "$(echo "$out" | tail -n 1)"
grep -q '`root_ca.pem` in the folder' "$ROOT/docs/ATTESTATION-API.md" && [ -f sim/root_ca.pem ] &&
    openssl x509 -in sim/root_ca.pem -noout -subject >/dev/null 2>&1 &&
    pass doc_sim_trust_root || fail doc_sim_trust_root "the doc does not name DIR/root_ca.pem, or it is not there"

D=$ROOT/../shared/data/tdx
[ -n "${CAI_SHARED_DATA:-}" ] && D=$CAI_SHARED_DATA/tdx
if [ -f "$D/tdx_quote" ]; then
    out=$("$CAI" attest verify "$D/tdx_quote" --collateral "$D/tdx_quote_collateral.json" --at 2025-06-20T10:16:03Z)
    echo "$out" | grep -q 'VERIFIED, TCB UpToDate' && pass intel_v4_uptodate || fail intel_v4_uptodate "$out"
    out=$("$CAI" attest verify "$D/tdx_quote" --collateral "$D/tdx_quote_collateral.json" --at 2025-06-20T10:16:03Z --json)
    echo "$out" | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["tee"] == "tdx" and c["tcb_status"] == "UpToDate" and c["advisory_ids"] == [], c
assert c["fmspc"] == "b0c06f000000" and c["tdx_module_tcb_status"] == "UpToDate", c
' && pass intel_v4_claims || fail intel_v4_claims "$out"
    # the v5 sample: every signature verifies, but by Intel's level matching no
    # TCB level admits its PCK certificate's SGX components (see test_tdx_verify)
    refuses intel_v5_tcb_not_supported "TCB not supported" "$CAI" attest verify "$D/tdx_quote_outdated" --collateral "$D/tdx_quote_outdated_collateral.json" --at 2026-02-19T10:58:51Z
    out=$(doc_offsets "$D/tdx_quote" 4 2>&1) && pass doc_offsets_intel_v4 || fail doc_offsets_intel_v4 "$(echo "$out" | tail -n 1)"
    out=$(doc_offsets "$D/tdx_quote_outdated" 5 2>&1) && pass doc_offsets_intel_v5 || fail doc_offsets_intel_v5 "$(echo "$out" | tail -n 1)"
    refuses intel_v4_expired "expired" "$CAI" attest verify "$D/tdx_quote" --collateral "$D/tdx_quote_collateral.json" --at 2025-08-01T00:00:00Z
else
    echo "SKIP intel_quotes: ../shared/data absent"
fi
finish
