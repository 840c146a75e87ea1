#!/usr/bin/env python3
"""include_graph.py - check the include graph of src/ against the layer rule.

    tools/include_graph.py [--root DIR]

A module is a folder under src/. Every `#include "..."` in src/**/*.c, *.h
and *.inc is an edge from the including file's module to the included
file's. The check fails (exit 1, naming the file and the include) when
  (a) the modules form a cycle,
  (b) a module includes a module of its own layer or a higher one, or one
      that the layer list does not name; the list is the numbered list under
      "## Layers" in docs/ARCHITECTURE.md, lowest layer first,
  (c) a module includes another module's internal header: every .inc file,
      and every header whose first comment says "(internal to MODULE)",
  (d) a module includes a library's header (#include <...>) that LIBRARIES
      gives to other modules only: libevent and libcurl are net's, SQLite
      and libpq the key broker's, so common, the base, needs nothing but
      libc, OpenSSL and jansson.
On success it prints the graph (module -> the modules it includes) and
"include graph: N modules, no cycles". Python 3 standard library only.
"""
import argparse
import os
import re
import sys

# Includes of internal headers allowed for now, as ("src/file.c", "mod/header.h")
# pairs (issue 17 removed the last ones). A pair listed here that no longer
# occurs is an error too, so the list only shrinks.
KNOWN_EXCEPTIONS = set()

# A library's headers (by the prefix of `#include <...>`) -> (its name, the
# modules that may include them). Libraries not listed (libc, OpenSSL,
# jansson) are open to every module.
LIBRARIES = {
    "event2/": ("libevent", {"net"}),
    "curl/": ("libcurl", {"net"}),
    "sqlite3.h": ("SQLite", {"kbs"}),
    "libpq-fe.h": ("libpq", {"kbs"}),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s*<([^>]+)>", re.M)
INTERNAL = re.compile(r"\(internal to (\w+)\)")
LAYER_ITEM = re.compile(r"^\d+\.\s+(.*)$")


def read_layers(doc):
    """Returns the layers of |doc| as a list of lists of module names."""
    out, in_section = [], False
    with open(doc, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                in_section = line.strip() == "## Layers"
                continue
            m = LAYER_ITEM.match(line.strip()) if in_section else None
            if m:
                out.append(re.findall(r"`([^`]+)`", m.group(1)))
    return out


def internal_to(path):
    """Returns the module a header is internal to, or None if it is public."""
    if path.endswith(".inc"):
        return path.split(os.sep)[1]
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(2000)
    end = head.find("*/")
    m = INTERNAL.search(head[: end if end >= 0 else len(head)])
    return m.group(1) if m else None


def sources(src):
    for dirpath, _, files in os.walk(src):
        for name in sorted(files):
            if name.endswith((".c", ".h", ".inc")):
                yield os.path.join(dirpath, name)


def find_cycle(graph):
    """Returns one cycle of |graph| as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                c = visit(n)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    os.chdir(args.root)

    layers = read_layers("docs/ARCHITECTURE.md")
    layer_of = {m: i for i, names in enumerate(layers) for m in names}
    errors = []
    if not layers:
        errors.append('docs/ARCHITECTURE.md has no "## Layers" list')

    graph, why, seen_exceptions = {}, {}, set()
    modules = sorted(d for d in os.listdir("src") if os.path.isdir(os.path.join("src", d)))
    for m in modules:
        graph[m] = set()
        if m not in layer_of:
            errors.append(f"module {m} is not in the layer list of docs/ARCHITECTURE.md")
    for path in sources("src"):
        mod = path.split(os.sep)[1]
        rel = path.replace(os.sep, "/")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in SYSTEM_INCLUDE.findall(text):
            for prefix, (lib, owners) in LIBRARIES.items():
                if inc.startswith(prefix) and mod not in owners:
                    errors.append(f"{rel} includes <{inc}>: {lib} is for {', '.join(sorted(owners))} "
                                  f"only (tools/include_graph.py LIBRARIES)")
        for inc in INCLUDE.findall(text):
            local = os.path.normpath(os.path.join(os.path.dirname(path), inc))
            target = local if os.path.isfile(local) else os.path.join("src", inc)
            if not os.path.isfile(target):
                errors.append(f'{rel}: #include "{inc}" names no file in src/')
                continue
            to = os.path.normpath(target).split(os.sep)[1]
            owner = internal_to(os.path.normpath(target))
            if owner is not None and owner != to:
                errors.append(f"{target}: says it is internal to {owner}, but it lies in src/{to}/")
            if to == mod:
                continue
            graph[mod].add(to)
            why.setdefault((mod, to), f'{rel} includes "{inc}"')
            if owner is not None:
                if (rel, inc) in KNOWN_EXCEPTIONS:
                    seen_exceptions.add((rel, inc))
                else:
                    errors.append(f'{rel} includes "{inc}", a header internal to {to}')
            if mod in layer_of and to in layer_of and layer_of[to] >= layer_of[mod]:
                rule = "its own layer" if layer_of[to] == layer_of[mod] else "a higher layer"
                errors.append(f'{mod} (layer {layer_of[mod] + 1}) includes {to} (layer {layer_of[to] + 1}, '
                              f'{rule}): {rel} includes "{inc}"')
    for rel, inc in sorted(KNOWN_EXCEPTIONS - seen_exceptions):
        errors.append(f'known exception {rel} -> "{inc}" no longer occurs: '
                      f"remove it from KNOWN_EXCEPTIONS in tools/include_graph.py")

    cycle = find_cycle(graph)
    if cycle:
        steps = "; ".join(why[(a, b)] for a, b in zip(cycle, cycle[1:]))
        errors.append(f"cycle {' -> '.join(cycle)}: {steps}")

    for m in modules:
        print(f"{m} -> {' '.join(sorted(graph[m])) or '(nothing)'}")
    if errors:
        for e in errors:
            print(f"include graph: {e}", file=sys.stderr)
        print(f"include graph: {len(errors)} problem(s), see docs/ARCHITECTURE.md (Layers)", file=sys.stderr)
        return 1
    print(f"include graph: {len(modules)} modules, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
