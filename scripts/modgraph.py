#!/usr/bin/env python3
"""Module map of a crate's src/: which source file imports which, cycles,
file lengths and `Result<_, String>` in library code.

    scripts/modgraph.py loadgen [--map]

Exits 1 when two files import each other (directly or through a circle),
a file is over 600 lines, or library code returns `Result<_, String>`."""
import os, re, sys

def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = [] if rel == ["lib"] else ["<main>"]
            mods[tuple(rel)] = p
    return mods

def expand(path):
    """`a::{b, c::{d}}` -> [a::b, a::c::d]"""
    path = re.sub(r"\s+", "", path)
    i = path.find("{")
    if i < 0:
        return [path]
    depth, j = 0, i
    for j in range(i, len(path)):
        depth += {"{": 1, "}": -1}.get(path[j], 0)
        if depth == 0:
            break
    inner, out, depth, cur = path[i + 1:j], [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            out.append(cur); cur = ""; continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    out.append(cur)
    return [e for part in out if part for e in expand(path[:i] + part + path[j + 1:])]

def resolve(me, path, mods, is_dir_mod):
    parts = [p for p in path.split("::") if p]
    if not parts:
        return None
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    elif parts[0] in ("super", "self"):
        base = list(me)
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
    elif tuple(me) + (parts[0],) in mods:
        base = list(me)
    else:
        return None
    best = ()
    for k in range(len(parts) + 1):
        cand = tuple(base + parts[:k])
        if cand in mods:
            best = cand
    return best

def edges(mods):
    out = {}
    for me, p in mods.items():
        text = open(p).read()
        text = re.sub(r"//[^\n]*", "", text)
        is_dir_mod = p.endswith("mod.rs") or p.endswith("lib.rs")
        found = set()
        body, _, tests = text.partition("#[cfg(test)]\nmod tests")
        for part, at in ((body, me), (tests, me + ("tests",))):
            for m in re.finditer(r"\buse\s+([^;]+);", part):
                for e in expand(m.group(1)):
                    r = resolve(at, e.split(" as ")[0], mods, is_dir_mod)
                    if r is not None:
                        found.add(r)
            for m in re.finditer(r"(?<![\w:])((?:crate|super|\w+)(?:::\w+)+)", part):
                r = resolve(at, m.group(1), mods, is_dir_mod)
                if r is not None:
                    found.add(r)
        found.discard(me)
        out[me] = found
    return out

def sccs(g):
    index, low, stack, on, res, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: res.append(comp)
    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index: visit(v)
    return res

def name(m):
    return "::".join(m) or "lib"

def main():
    crate = sys.argv[1]
    src = os.path.join(crate, "src")
    mods = modules(src)
    g = edges(mods)
    bad = 0
    if "--map" in sys.argv:
        for m in sorted(g):
            print(f"{name(m)} -> {', '.join(sorted(name(x) for x in g[m])) or '-'}")
    for comp in sccs(g):
        bad += 1
        print("circle:", " <-> ".join(sorted(name(m) for m in comp)))
    for m, p in mods.items():
        n = sum(1 for _ in open(p))
        if n > 600:
            bad += 1; print(f"long: {p}: {n} lines")
        if m != ("<main>",):
            for i, line in enumerate(open(p), 1):
                if re.search(r"Result<[^;{]*,\s*String>", line):
                    bad += 1; print(f"string error: {p}:{i}: {line.strip()}")
    sys.exit(1 if bad else 0)

main()
