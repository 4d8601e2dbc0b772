#!/usr/bin/env python3
"""Module map of a crate's src/: which source file imports which, cycles,
file lengths, function lengths and `Result<_, String>` in library code.

    scripts/modgraph.py loadgen [--map]

Exits 1 when two files import each other (directly or through a circle),
a file is over 600 lines, library code returns `Result<_, String>`, or a
non-test function is over 80 lines without a `// long: REASON` comment
right above it (among its doc comments and attributes). Across the
workspace at most MAX_LONG functions may carry such a reason; the count is
per crate here and summed by .ci/run through --long-count."""
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

MAX_FN_LINES = 80

def blank_literals(text):
    """`text` with comments, strings and char literals blanked (newlines
    kept), so that braces can be counted."""
    out, i, n = [], 0, len(text)
    def keep_newlines(chunk):
        return "".join(c if c == "\n" else " " for c in chunk)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(keep_newlines(text[i:j])); i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j): depth += 1; j += 2
                elif text.startswith("*/", j): depth -= 1; j += 2
                else: j += 1
            out.append(keep_newlines(text[i:j])); i = j
        elif re.match(r'(b?r)(#*)"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:i + 40])
            end = '"' + m.group(2)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(keep_newlines(text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(keep_newlines(text[i:j + 1])); i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x..|u\{[0-9a-fA-F]*\}|.)|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * m.end()); i += m.end()
            else:
                out.append(c); i += 1
        else:
            out.append(c); i += 1
    return "".join(out)

def functions(path):
    """(name, first line, lines, reason or None, in test code) per fn."""
    raw = open(path).read()
    text = blank_literals(raw)
    raw_lines = raw.split("\n")
    tests = []  # (start, end) offsets of #[cfg(test)] modules
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        depth, j = 0, m.end() - 1
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        tests.append((m.start(), j))
    out = []
    for m in re.finditer(r"\bfn\s+(\w+)", text):
        k = m.end()
        depth, j = 0, k
        while j < len(text) and text[j] not in "{;":
            if text[j] in "([<":
                depth += 1
            elif text[j] in ")]>":
                depth -= 1
            j += 1
        if j >= len(text) or text[j] == ";":
            continue
        depth, e = 0, j
        while e < len(text):
            depth += {"{": 1, "}": -1}.get(text[e], 0)
            if depth == 0:
                break
            e += 1
        first = text.count("\n", 0, m.start()) + 1
        last = text.count("\n", 0, e) + 1
        reason, ln = None, first - 2
        while ln >= 0 and re.match(r"\s*(///|//|#\[|\)\]|$)", raw_lines[ln]) and raw_lines[ln].strip():
            r = re.match(r"\s*// long: (.+)", raw_lines[ln])
            if r:
                reason = r.group(1)
            ln -= 1
        in_test = any(a <= m.start() <= b for a, b in tests)
        out.append((m.group(1), first, last - first + 1, reason, in_test))
    return out

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
    long_count = 0
    for m, p in mods.items():
        if m and m[-1] == "tests":
            continue
        for fn, line, n, reason, in_test in functions(p):
            if in_test or n <= MAX_FN_LINES:
                continue
            if reason:
                long_count += 1
                if "--long" in sys.argv:
                    print(f"long fn (kept): {p}:{line}: {fn}, {n} lines: {reason}")
            else:
                bad += 1; print(f"long fn: {p}:{line}: {fn} is {n} lines (over {MAX_FN_LINES}; split it, or say why not with `// long: REASON` above it)")
    if "--long-count" in sys.argv:
        with open(sys.argv[sys.argv.index("--long-count") + 1], "a") as f:
            f.write(f"{crate} {long_count}\n")
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
