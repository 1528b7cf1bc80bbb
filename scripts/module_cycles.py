#!/usr/bin/env python3
"""Import cycles between the modules of Rust crates, and (optionally) overlong functions.

usage: module_cycles.py [--max-fn-lines N] SRC_DIR [SRC_DIR ...]

Each SRC_DIR is the src/ directory of one crate (e.g. `src`, `e2e/kubesim/src`). The library
root is SRC_DIR/lib.rs (else main.rs); src/main.rs next to a lib.rs and src/bin/ are separate
crates and are left out of the graph.

Nodes: one node per FILE. `lib.rs` is the node `crate`; `a.rs` and `a/mod.rs` are the node `a`;
`a/b.rs` is `a::b`. So a folder module is one node per file, and its mod.rs is a node of its
own: a child file using `super::X` where X lives in mod.rs makes an edge child -> parent.

Edges: module A -> module B when A's file names a path that resolves into B's file:
`crate::b::...`, `super::...`, `self::...` (including `use crate::{a, b::c}` groups), and bare
`child::...` where `child` is declared by `mod child;` in A's file. A path resolves to the
longest prefix that is a module node; a path ending at an item of the crate root (e.g.
`crate::Sim`) resolves to the node `crate`. Comments, strings and `#[cfg(test)] mod ... { }`
blocks (and `#[cfg(test)] mod x;` files) are ignored.

Prints every strongly connected component of more than one module (with one reference per
edge inside it, file:line) and exits 1 if there is one; else prints one OK line.

--max-fn-lines N also reports every non-test function (`fn` line to its closing brace) longer
than N lines in the given dirs, skipping `#[cfg(test)]` modules and files under tests/; any
such function also makes the exit status 1.
"""

import argparse
import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def blank_comments_and_strings(src):
    """The source with comments, string and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(src)

    def blank(s):
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif re.match(r'b?r#*"', src[i:i + 80]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', src[i:])
            end = '"' + m.group(2)
            j = src.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(src[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", src[i:])
            if m:
                out.append(blank(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_pos):
    """Index of the `}` closing the `{` at open_pos (len(text) if unbalanced)."""
    depth = 0
    for j in range(open_pos, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)


CFG_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")


def strip_test_modules(text):
    """(text with `#[cfg(test)] mod x { }` blocks blanked, names of `#[cfg(test)] mod x;` files)."""
    test_files = set()
    while True:
        m = CFG_TEST_MOD.search(text)
        if not m:
            return text, test_files
        if m.group(2) == ";":
            test_files.add(m.group(1))
            end = m.end()
        else:
            end = matching_brace(text, m.end() - 1) + 1
        text = text[: m.start()] + "".join(ch if ch == "\n" else " " for ch in text[m.start():end]) + text[end:]


def parse_use_tree(text, pos):
    """Paths (lists of segments) of the path or use tree starting at text[pos:]."""
    segs = []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text) and text[pos] == "{":
            close = matching_brace(text, pos)
            inner = text[pos + 1: close]
            paths, depth, start = [], 0, 0
            for k, ch in enumerate(inner + ","):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    part = inner[start:k].strip()
                    start = k + 1
                    if part:
                        paths += [segs + p for p in parse_use_tree(part, 0)]
            return paths or [segs]
        m = IDENT.match(text, pos)
        if not m:
            return [segs]
        segs = segs + [m.group(0)]
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith("::", pos):
            return [segs]
        pos += 2


class Crate:
    def __init__(self, src_dir):
        self.src_dir = src_dir
        self.files = {}  # node -> (path, text without comments/strings/test modules)
        root = "lib.rs" if os.path.exists(os.path.join(src_dir, "lib.rs")) else "main.rs"
        self.load(os.path.join(src_dir, root), ())

    def load(self, path, modpath):
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            text, test_files = strip_test_modules(blank_comments_and_strings(f.read()))
        self.files[modpath] = (path, text)
        folder = os.path.dirname(path) if os.path.basename(path) in ("lib.rs", "main.rs", "mod.rs") \
            else os.path.splitext(path)[0]
        for m in re.finditer(r"(?<![\w:])mod\s+(\w+)\s*;", text):
            name = m.group(1)
            if name in test_files:
                continue
            flat = os.path.join(folder, name + ".rs")
            self.load(flat if os.path.exists(flat) else os.path.join(folder, name, "mod.rs"), modpath + (name,))

    @staticmethod
    def name(node):
        return "::".join(node) if node else "crate"

    def resolve(self, segs):
        """The longest module-node prefix of an absolute path."""
        best = ()
        for k in range(1, len(segs) + 1):
            if tuple(segs[:k]) in self.files:
                best = tuple(segs[:k])
        return best

    def edges(self):
        """{(from, to): 'file:line'} of module references."""
        found = {}
        for node, (path, text) in self.files.items():
            children = set(re.findall(r"(?<![\w:])mod\s+(\w+)\s*;", text))
            starts = r"crate|super|self" + "".join("|" + re.escape(c) for c in sorted(children))
            for m in re.finditer(r"(?<![\w:])(%s)\s*::" % starts, text):
                for segs in parse_use_tree(text, m.start()):
                    absolute = self.absolute(node, segs)
                    if absolute is None:
                        continue
                    target = self.resolve(absolute)
                    if target != node:
                        line = text.count("\n", 0, m.start()) + 1
                        found.setdefault((node, target), "%s:%d" % (path, line))
        return found

    def absolute(self, node, segs):
        segs = [s for s in segs if s != "self" or segs.index(s) == 0]
        if not segs:
            return None
        if segs[0] == "crate":
            return segs[1:]
        base = list(node)
        if segs[0] == "self":
            segs = segs[1:]
        while segs and segs[0] == "super":
            if not base:
                return None
            base.pop()
            segs = segs[1:]
        return base + segs


def strongly_connected(nodes, edges):
    """Tarjan's algorithm; components as sorted lists."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    succ = {n: sorted({b for (a, b) in edges if a == n}) for n in nodes}
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return comps


def check_cycles(src_dir):
    crate = Crate(src_dir)
    edges = crate.edges()
    bad = [c for c in strongly_connected(list(crate.files), edges) if len(c) > 1]
    for comp in bad:
        print("%s: import cycle between %d modules: %s" % (src_dir, len(comp), ", ".join(Crate.name(n) for n in comp)))
        for (a, b), where in sorted(edges.items()):
            if a in comp and b in comp:
                print("    %s -> %s  (%s)" % (Crate.name(a), Crate.name(b), where))
    return len(crate.files), len(bad)


FN = re.compile(r"(?<![\w])fn\s+(\w+)")


def long_functions(src_dir, max_lines):
    found = []
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "tests")
        for fname in sorted(filenames):
            if not fname.endswith(".rs"):
                continue
            path = os.path.join(dirpath, fname)
            with open(path, encoding="utf-8") as f:
                text, _ = strip_test_modules(blank_comments_and_strings(f.read()))
            for m in FN.finditer(text):
                j, depth = m.end(), 0
                while j < len(text):
                    ch = text[j]
                    if ch in "([":
                        depth += 1
                    elif ch in ")]":
                        depth -= 1
                    elif depth == 0 and ch in "{;":
                        break
                    j += 1
                if j >= len(text) or text[j] == ";":
                    continue
                first = text.count("\n", 0, m.start()) + 1
                last = text.count("\n", 0, matching_brace(text, j)) + 1
                if last - first + 1 > max_lines:
                    found.append((path, first, m.group(1), last - first + 1))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n", 3)[3],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src_dirs", nargs="+", metavar="SRC_DIR", help="a crate's src directory")
    ap.add_argument("--max-fn-lines", type=int, metavar="N",
                    help="also report non-test functions longer than N lines")
    args = ap.parse_args()
    failed = False
    modules = 0
    for d in args.src_dirs:
        if not os.path.isdir(d):
            ap.error("not a directory: %s" % d)
        n, cycles = check_cycles(d)
        modules += n
        failed |= cycles > 0
    if not failed:
        print("OK: no import cycle between the %d modules of %s" % (modules, ", ".join(args.src_dirs)))
    if args.max_fn_lines is not None:
        longs = [f for d in args.src_dirs for f in long_functions(d, args.max_fn_lines)]
        for path, line, name, length in longs:
            print("%s:%d: fn %s is %d lines (max %d)" % (path, line, name, length, args.max_fn_lines))
        if longs:
            failed = True
        else:
            print("OK: no non-test function longer than %d lines" % args.max_fn_lines)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
