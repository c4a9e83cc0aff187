#!/usr/bin/env python3
"""Lines of code per kind, now and before the kind kit, as a Markdown table.

Source lines are a kind file's lines before its first `#[cfg(test)]`; test lines
are the rest of the file. The "providers tree" is everything that talks to AWS:
`src/providers/` before the kit, `crates/reconcile-aws/src/` (kit included) now.

    python3 scripts/lines.py                 # against the commit before the kit
    python3 scripts/lines.py REV             # against another commit
"""

import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The last commit with the old layout: every kind one file in src/providers/.
BASELINE = "f794a57^"
OLD_HELPERS = {"mod.rs", "observe.rs", "ec2.rs", "ecs.rs", "elbv2.rs", "rds.rs"}


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def split(text):
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if l.startswith("#[cfg(test)]"):
            return i, len(lines) - i
    return len(lines), 0


def old_kinds(rev):
    out = {}
    total = 0
    for path in git("ls-tree", "-r", "--name-only", rev, "--", "src/providers").split():
        text = git("show", f"{rev}:{path}")
        total += len(text.splitlines())
        name = os.path.basename(path)
        if name not in OLD_HELPERS:
            out[name[:-3]] = split(text)
    return out, total


def new_kinds():
    base = os.path.join(ROOT, "crates", "reconcile-aws", "src")
    out = {}
    total = 0
    for dirpath, _, files in os.walk(base):
        for f in files:
            if not f.endswith(".rs"):
                continue
            with open(os.path.join(dirpath, f)) as fh:
                text = fh.read()
            total += len(text.splitlines())
            service = os.path.relpath(dirpath, base)
            if service not in (".", "kit") and f != "mod.rs":
                out[f[:-3]] = split(text)
    return out, total


def summary(kinds):
    src = [s for s, _ in kinds.values()]
    tests = [t for _, t in kinds.values()]
    big = max(kinds, key=lambda k: kinds[k][0])
    return statistics.median(src), statistics.median(tests), big, kinds[big][0]


def main(argv):
    rev = argv[0] if argv else BASELINE
    before, before_total = old_kinds(rev)
    now, now_total = new_kinds()
    print("| kind | source before | source now | tests before | tests now |")
    print("|---|---:|---:|---:|---:|")
    for k in sorted(now):
        s0, t0 = before.get(k, (0, 0))
        s1, t1 = now[k]
        print(f"| {k} | {s0} | {s1} | {t0} | {t1} |")
    b, n = summary(before), summary(now)
    print()
    print("| measure | before | now | change |")
    print("|---|---:|---:|---:|")
    for what, x, y in (
        ("median source lines per kind", b[0], n[0]),
        ("median test lines per kind", b[1], n[1]),
        (f"largest kind, source lines ({b[2]} / {n[2]})", b[3], n[3]),
        ("providers tree, all lines", before_total, now_total),
    ):
        print(f"| {what} | {x:g} | {y:g} | {100 * (y - x) / x:+.0f}% |")


if __name__ == "__main__":
    main(sys.argv[1:])
