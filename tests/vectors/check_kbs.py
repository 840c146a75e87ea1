#!/usr/bin/env python3
"""check_kbs.py - recompute the KBS runtime-data binding of tests/vectors/kbs
independently of the C code: RFC 8785 for this string-only object is Python's
sorted, compact, non-ASCII-escaping JSON; REPORTDATA is its SHA-384, zero padded
to 64 bytes (Trustee's regularize_data)."""
import hashlib
import json
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/kbs"
att = json.load(open(f"{d}/attestation.json"))
want = json.load(open(f"{d}/runtime-data.json"))
pk = att["runtime-data"]["tee-pubkey"]
rd = {"additional-evidence": att["tee-evidence"]["additional_evidence"],
      "nonce": att["runtime-data"]["nonce"],
      "tee-pubkey": {k: pk[k] for k in ("kty", "crv", "alg", "x", "y")}}
jcs = json.dumps(rd, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
ok = jcs == want["jcs"]
print(("PASS" if ok else "FAIL") + " kbs_runtime_data_jcs")
digest = (hashlib.sha384(jcs.encode()).digest() + bytes(16)).hex()
ok2 = digest == want["report_data"]
print(("PASS" if ok2 else "FAIL") + " kbs_runtime_data_report_data")
sys.exit(0 if ok and ok2 else 1)
