#!/usr/bin/env python3
"""Independent check of tests/vectors/seal-v1.txt against docs/SEALED-FORMAT.md,
written from the spec with the Python standard library only: header layout,
model digest, key commitment, header MAC and file length. (AES-GCM is not in
the standard library; the chunks are checked by the C tests.)
Prints PASS/FAIL lines per vector."""
import hashlib, hmac, struct, sys

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdf_expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]

def vectors(path):
    cur = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, v = [s.strip() for s in line.split("=", 1)]
        if k == "name" and cur:
            yield cur
            cur = {}
        cur[k] = v
    if cur:
        yield cur

def check(v):
    key, salt = bytes.fromhex(v["key"]), bytes.fromhex(v["salt"])
    sealed = bytes.fromhex(v["sealed"])
    L = int(v["plaintext_len"])
    plaintext = bytes(j % 251 for j in range(L))
    magic, ver, suite, hlen, clog2, kind, res, plen = struct.unpack_from("<8sHHIBBHQ", sealed, 0)
    assert magic == b"CAI-SEAL" and ver == 1 and suite == 1 and res == 0, "prefix"
    assert clog2 == int(v["chunk_log2"]) and plen == L, "sizes"
    digest, hsalt, commit = sealed[28:60], sealed[60:92], sealed[92:124]
    assert digest == hashlib.sha256(plaintext).digest(), "digest"
    assert hsalt == salt, "salt"
    (klen,) = struct.unpack_from("<H", sealed, 124)
    assert sealed[126:126 + klen].decode() == v["key_id"], "key id"
    (mlen,) = struct.unpack_from("<I", sealed, 126 + klen)
    assert hlen == 126 + klen + 4 + mlen + 32, "header length"
    assert (kind == 1) == (mlen > 0), "kind"
    prk = hkdf_extract(salt, key)
    assert commit == hkdf_expand(prk, b"cai-seal/v1 key-commitment", 32), "commitment"
    mac_key = hkdf_expand(prk, b"cai-seal/v1 header-mac", 32)
    assert sealed[hlen - 32:hlen] == hmac.new(mac_key, sealed[:hlen - 32], hashlib.sha256).digest(), "MAC"
    C = 1 << clog2
    n = max(1, -(-L // C))
    assert len(sealed) == hlen + L + 16 * n, "file length"

failed = 0
for v in vectors(sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/seal-v1.txt"):
    try:
        check(v)
        print("PASS vector_header_%s" % v["name"])
    except AssertionError as e:
        failed += 1
        print("FAIL vector_header_%s: %s" % (v["name"], e))
sys.exit(1 if failed else 0)
