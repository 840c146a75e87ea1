#!/usr/bin/env python3
"""Helper of bench/vs-llamacpp.sh (standard library only).

  vs_llamacpp.py llama-best FILE N_PROMPT N_GEN N_DEPTH
      FILE holds llama-bench -o jsonl output; prints "BEST MEAN RUNS" (tokens/s:
      the best and the mean of the per-run samples_ts) of the one test with
      these n_prompt, n_gen and n_depth. Exits 1 if there is no such test.
  vs_llamacpp.py llama-info FILE
      one line on how llama-bench ran (build, flash attention, KV cache type).
  vs_llamacpp.py cai-result FILE
      FILE holds `cai bench -m` output; prints "PREFILL DECODE DEEP RSS_MIB GBPS
      BOUND" from its result line and, with -c, its context line (DEEP is the
      decode tokens/s at that depth, else 0).
  vs_llamacpp.py summary RECORDS
      the table of the decode/prefill part, from the records the script wrote.
  vs_llamacpp.py serve --tokens N --streams 1,4,16 --rounds R NAME=PORT[+ignore_eos] ...
      streaming /v1/completions against each server, interleaved, same prompts.
"""
import argparse
import http.client
import json
import re
import statistics
import sys
import threading
import time

med = statistics.median


def llama_best(path, n_prompt, n_gen, n_depth):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if (d.get("n_prompt"), d.get("n_gen"), d.get("n_depth")) == (n_prompt, n_gen, n_depth):
                rows.append(d)
    if len(rows) != 1 or not rows[0].get("samples_ts"):
        sys.exit(f"vs_llamacpp: {path}: expected one llama-bench test with n_prompt={n_prompt} "
                 f"n_gen={n_gen} n_depth={n_depth} and its samples_ts, found {len(rows)}")
    ts = [float(x) for x in rows[0]["samples_ts"]]
    print(f"{max(ts):.3f} {statistics.mean(ts):.3f} {len(ts)}")


def llama_info(path):
    d = json.loads(open(path).readline())
    fa = {-1: "auto", 0: "off", 1: "on"}.get(d.get("flash_attn"), d.get("flash_attn"))
    print(f"llama-bench build {d.get('build_commit')} ({d.get('build_number')}), flash_attn {fa}, "
          f"KV cache {d.get('type_k')}/{d.get('type_v')}, n_batch {d.get('n_batch')}, cpu {d.get('cpu_info')}")


def cai_result(path):
    text = open(path).read()
    m = re.search(r"^result (.*)$", text, re.M)
    if m is None:
        sys.exit(f"vs_llamacpp: {path}: no 'result' line in the cai bench output")
    kv = dict(f.split("=", 1) for f in m.group(1).split())
    deep = re.search(r"^context .* then decode ([0-9.]+) tokens/s", text, re.M)
    print(kv["prefill_tps"], kv["decode_tps"], deep.group(1) if deep else "0", kv["rss_mib"],
          kv["bandwidth_gbps"], kv["bound_tps"])


def fmt(x, width, prec):
    return f"{x:{width}.{prec}f}" if x is not None else f"{'-':>{width}}"


def summary(path):
    # part tool variant round prefill decode rss_mib gbps bound (tab separated)
    recs = {}
    order = []
    with open(path) as f:
        for line in f:
            part, tool, variant, _rnd, pp, tg, rss, gbps, bound = line.rstrip("\n").split("\t")
            key = (part, tool, variant)
            if key not in recs:
                recs[key] = []
                order.append(key)
            recs[key].append(tuple(float(x) if x not in ("", "-") else None
                                   for x in (pp, tg, rss, gbps, bound)))

    def col(key, i):
        xs = [r[i] for r in recs[key] if r[i] is not None]
        return med(xs) if xs else None

    print(f"{'part':<12} {'engine':<18} {'prefill':>9} {'decode':>8} {'decode range':>15} "
          f"{'peak RSS':>9} {'of bound':>8} {'prefill':>8} {'decode':>8}")
    print(f"{'':<12} {'':<18} {'tok/s':>9} {'tok/s':>8} {'min-max tok/s':>15} "
          f"{'GiB':>9} {'':>8} {'cai/x':>8} {'cai/x':>8}")
    parts = []
    for key in order:
        if key[0] not in parts:
            parts.append(key[0])
    for part in parts:
        keys = [k for k in order if k[0] == part]
        cai = next((k for k in keys if k[1] == "cai"), None)
        bound = col(cai, 4) if cai else None
        best = {}  # the best llama.cpp variant, prefill and decode separately
        for k in keys:
            if k[1] != "cai":
                for i in (0, 1):
                    v = col(k, i)
                    if v is not None and (i not in best or v > best[i]):
                        best[i] = v
        for k in keys:
            pp, tg, rss = col(k, 0), col(k, 1), col(k, 2)
            tgs = [r[1] for r in recs[k] if r[1] is not None]
            rng = f"{min(tgs):.2f}-{max(tgs):.2f}" if tgs else "-"
            if k[1] == "cai":  # each process's decode over its own bound
                own = [r[1] / r[4] for r in recs[k] if r[1] and r[4]]
                share = f"{100 * med(own):7.0f}%" if own else f"{'-':>8}"
            else:
                share = f"{100 * tg / bound:7.0f}%" if tg and bound else f"{'-':>8}"
            rp = rt = None
            if k[1] != "cai" and cai:
                cp, ct = col(cai, 0), col(cai, 1)
                rp = cp / pp if cp and pp else None
                rt = ct / tg if ct and tg else None
            name = "cai" if k[1] == "cai" else f"llama.cpp {k[2]}"
            print(f"{part:<12} {name:<18} {fmt(pp, 9, 2)} {fmt(tg, 8, 2)} {rng:>15} "
                  f"{fmt(rss / 1024 if rss else None, 9, 2)} {share} {fmt(rp, 8, 3)} {fmt(rt, 8, 3)}")
        if cai and best:
            cp, ct = col(cai, 0), col(cai, 1)
            rp = cp / best[0] if cp and best.get(0) else None
            rt = ct / best[1] if ct and best.get(1) else None
            print(f"{part:<12} {'ratio vs best':<18} {'':>9} {'':>8} {'':>15} {'':>9} {'':>8} "
                  f"{fmt(rp, 8, 3)} {fmt(rt, 8, 3)}")
        if cai and bound:
            print(f"{part:<12} {'cai bound':<18} {'':>9} {fmt(bound, 8, 2)}  (read bandwidth "
                  f"{col(cai, 3):.2f} GB/s, median over rounds)")


def invalid_utf8_tokens(path):
    """Ids of the tokens of a byte-level BPE tokenizer.json whose bytes are not
    UTF-8 by themselves (stray parts of a multi-byte character)."""
    tj = json.load(open(path))
    # GPT-2's bytes_to_unicode: the printable character that stands for each byte
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    u2b = {chr(c): b for b, c in zip(bs, cs)}
    bad = []
    for tok, i in tj["model"]["vocab"].items():
        try:
            bytes(u2b[ch] for ch in tok).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            bad.append(i)
    return bad


def serve(args):
    llama_extra = {"ignore_eos": True}
    if args.vocab:
        llama_extra["logit_bias"] = [[i, False] for i in invalid_utf8_tokens(args.vocab)]
    targets = []
    for t in args.targets:
        name, rest = t.split("=", 1)
        port, _, kind = rest.partition("+")
        targets.append((name, int(port), llama_extra if kind == "llama" else {}))
    streams = [int(x) for x in args.streams.split(",")]
    conns = {}  # (port, client): a kept-alive connection

    def run(port, extra, n, tag):
        """n concurrent streams, each with a prompt new to the server: (tokens/s
        over the wall time, median TTFT, tokens, short replies)."""
        res = []

        def one(i):
            body = dict(model="m", prompt=f"{tag}-{i}: once upon a time", max_tokens=args.tokens,
                        temperature=1, top_k=0, top_p=1, min_p=0, seed=1000 * tag + i, stream=True,
                        stream_options={"include_usage": True}, **extra)
            c = conns.get((port, i))
            for attempt in (0, 1):
                if c is None:
                    c = conns[(port, i)] = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                t0 = time.time()
                try:
                    c.request("POST", "/v1/completions", body=json.dumps(body),
                              headers={"Content-Type": "application/json"})
                    r = c.getresponse()
                    break
                except (ConnectionError, http.client.RemoteDisconnected):
                    # The server closed a kept-alive connection while it idled
                    # (llama-server after 5 s): open a new one, once.
                    c.close()
                    c = None
                    if attempt:
                        raise
            first = None
            used = chunks = 0
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
            for line in r:
                if line.startswith(b"data: {"):
                    d = json.loads(line[6:])
                    if d.get("choices") and d["choices"][0].get("text"):
                        chunks += 1
                        first = time.time() - t0 if first is None else first
                    if d.get("usage"):
                        used = d["usage"]["completion_tokens"]
            r.read()
            res.append((used or chunks, first or 0.0))

        errors = []

        def guarded(i):
            try:
                one(i)
            except Exception as e:  # reported by the main thread
                errors.append(f"{type(e).__name__}: {e}")

        t0 = time.time()
        ts = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        wall = time.time() - t0
        if errors or len(res) != n:
            raise SystemExit(f"vs_llamacpp: port {port}: {n - len(res)} of {n} streams failed: "
                             + "; ".join(errors[:3]))
        used = sum(r[0] for r in res)
        return used / wall, med(r[1] for r in res), used, sum(r[0] < args.tokens for r in res)

    tag = 1
    table = {}
    for n in streams:
        for _, port, extra in targets:  # warm every connection and every server
            run(port, extra, n, tag)
        tag += 1
        rows = {name: [] for name, _, _ in targets}
        for r in range(args.rounds):
            # rotate the order each round: no server always goes first
            k = r % len(targets)
            for name, port, extra in targets[k:] + targets[:k]:
                rows[name].append(run(port, extra, n, tag))
            tag += 1
        table[n] = rows
        line = [f"streams={n}"]
        for name, _, _ in targets:
            line.append(f"{name}={med(x[0] for x in rows[name]):.2f}")
        print("result " + " ".join(line), file=sys.stderr)

    first = targets[0][0]
    print(f"{'streams':<8} {'server':<24} {'tokens/s':>9} {'min-max':>13} {'TTFT ms':>8} "
          f"{first + '/x':>9} {'vs 1 stream':>11}")
    for n in streams:
        for name, _, _ in targets:
            xs = table[n][name]
            tps = med(x[0] for x in xs)
            ratio = (med(a[0] / b[0] for a, b in zip(table[n][first], xs))
                     if name != first else None)
            scale = tps / med(x[0] for x in table[streams[0]][name]) if n != streams[0] else None
            short = sum(x[3] for x in xs)
            note = f"  ({short} replies shorter than {args.tokens} tokens)" if short else ""
            print(f"{n:<8} {name:<24} {tps:9.2f} {min(x[0] for x in xs):6.1f}-{max(x[0] for x in xs):<6.1f} "
                  f"{1e3 * med(x[1] for x in xs):8.0f} {fmt(ratio, 9, 3)} {fmt(scale, 11, 2)}{note}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "llama-best" and len(rest) == 4:
        llama_best(rest[0], *map(int, rest[1:]))
    elif cmd == "llama-info" and len(rest) == 1:
        llama_info(rest[0])
    elif cmd == "cai-result" and len(rest) == 1:
        cai_result(rest[0])
    elif cmd == "summary" and len(rest) == 1:
        summary(rest[0])
    elif cmd == "serve":
        p = argparse.ArgumentParser(prog="vs_llamacpp.py serve")
        p.add_argument("--tokens", type=int, default=64)
        p.add_argument("--streams", default="1,4,16")
        p.add_argument("--rounds", type=int, default=6)
        p.add_argument("--vocab", help="tokenizer.json: llama-server never samples its non-UTF-8 tokens")
        p.add_argument("targets", nargs="+")
        serve(p.parse_args(rest))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
