#!/usr/bin/env python3
"""func_length.py - no function in src/ longer than LIMIT lines without a reason.

    tools/func_length.py [--root DIR] [--limit N]

A function is a definition starting at column 0 in src/**/*.c or *.inc and
ending at the first line that is exactly "}"; its length counts from the
first line of its signature to that brace. A function longer than LIMIT
(default 120) lines passes only if the comment right above its signature
gives the reason, as "(long: REASON)". Otherwise the check fails (exit 1),
naming file, line, function and length. Python 3 standard library only.
"""
import argparse
import os
import re
import sys

NAME = re.compile(r"(\w+)\s*\(")
REASON = re.compile(r"\(long: [^)]+\)")


def functions(lines):
    """Yields (first line index, length, name, comment above) per definition."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line or not (line[0].isalpha() or line[0] == "_") or "(" not in line or \
                line.startswith(("typedef", "struct", "enum", "union")) or "=" in line.split("(")[0]:
            i += 1
            continue
        j = i  # the signature may span lines; it ends in "{" (a definition) or ";"
        while j < len(lines) and not lines[j].rstrip().endswith(("{", ";")):
            j += 1
        if j >= len(lines) or lines[j].rstrip().endswith(";"):
            i = j + 1
            continue
        k = j + 1
        while k < len(lines) and lines[k] != "}":
            k += 1
        c = i  # the comment block right above the signature
        if c > 0 and lines[c - 1].rstrip().endswith("*/"):
            c -= 1
            while c > 0 and "/*" not in lines[c]:
                c -= 1
        m = NAME.search(line)
        yield i, k - i + 1, m.group(1) if m else "?", "\n".join(lines[c:i])
        i = k + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--limit", type=int, default=120)
    args = ap.parse_args()
    src = os.path.join(args.root, "src")
    bad, n = [], 0
    for d, _, files in sorted(os.walk(src)):
        for f in sorted(files):
            if not f.endswith((".c", ".inc")):
                continue
            path = os.path.join(d, f)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            for start, length, name, above in functions(lines):
                n += 1
                if length > args.limit and not REASON.search(above):
                    bad.append(f"{os.path.relpath(path, args.root)}:{start + 1}: {name} is "
                               f"{length} lines (limit {args.limit}; give the reason above it "
                               f"as \"(long: ...)\" or split it)")
    for b in bad:
        print(b)
    if bad:
        return 1
    print(f"function length: {n} functions, none over {args.limit} lines without a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
