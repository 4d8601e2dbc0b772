#!/usr/bin/env python3
"""Fails on a relative link in the repository's Markdown that points at no
file: every `[text](path)` and `![alt](path)` outside code blocks, path
relative to the file (anchors ignored; http(s) and mailto links not
followed: nothing here reaches the network).

  python3 scripts/check_links.py
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
files = subprocess.run(["git", "-C", ROOT, "ls-files", "*.md"], capture_output=True,
                       text=True, check=True).stdout.split()
bad = 0
for f in files:
    fence = False
    for n, line in enumerate(open(os.path.join(ROOT, f), encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"^(https?:|mailto:|#)", target):
                continue
            path = os.path.normpath(os.path.join(ROOT, os.path.dirname(f), target.split("#")[0]))
            if not os.path.exists(path):
                print(f"{f}:{n}: broken link {target}")
                bad += 1
print(f"{len(files)} Markdown files, {bad} broken links")
sys.exit(1 if bad else 0)
