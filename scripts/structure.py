#!/usr/bin/env python3
"""Module structure of a Rust crate: files, floors, imports running back up, import circles.

    python3 scripts/structure.py crates/legato-http/src        # the figures and any circle
    python3 scripts/structure.py -v crates/legato-http/src     # and which file is on which floor
    python3 scripts/structure.py --check crates/*/src          # fails on any import circle

A file (module) imports another when it names `crate::a::b` or `super::x` (in a `use` or a
path), or, for a module file, a child module by its relative path (`browse::albums`). The
crate root (lib.rs, main.rs) is not counted; `#[cfg(test)] mod tests` blocks are left out.
Floors: files grouped by the longest chain of imports below them (a circle counts as one).
Imports running back up: inside each circle, the imports against an order that puts the files
the others import lowest (a greedy feedback-arc set): what must go for the circle to become
layers. scripts/test.sh runs the check on every crate.
"""
import os, re, sys, collections

def modules(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for n in names:
            if not n.endswith('.rs'):
                continue
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, src)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] in ('mod', 'lib', 'main'):
                parts = parts[:-1]
            files['::'.join(parts) or 'crate'] = p
    return files

def strip(text):
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    # test modules do not count
    m = re.search(r'#\[cfg\(test\)\]\s*mod tests\s*\{', text)
    if m:
        text = text[:m.start()]
    return text

def imports(mod, text, mods):
    out = set()
    def resolve(path):
        parts = path.split('::')
        best = None
        for i in range(len(parts), 0, -1):
            cand = '::'.join(parts[:i])
            if cand in mods:
                best = cand
                break
        return best
    # expand `use crate::{a, b::c}` groups at one level
    for m in re.finditer(r'crate::((?:\w+::)*)\{([^}]*)\}', text):
        prefix = m.group(1)
        for item in m.group(2).split(','):
            item = item.strip().split(' as ')[0].strip()
            if item:
                r = resolve((prefix + item).rstrip(':'))
                if r: out.add(r)
    for m in re.finditer(r'crate::((?:\w+)(?:::\w+)*)', text):
        r = resolve(m.group(1))
        if r: out.add(r)
    parent = mod.rsplit('::', 1)[0] if '::' in mod else ''
    base = (parent + '::' if parent else '')
    for m in re.finditer(r'\bsuper::((?:\w+::)*)\{([^}]*)\}', text):
        for item in m.group(2).split(','):
            item = item.strip().split(' as ')[0].strip()
            if item:
                r = resolve((base + m.group(1) + item).rstrip(':')) or (parent or None)
                if r: out.add(r)
    for m in re.finditer(r'\bsuper::((?:\w+)(?:::\w+)*)', text):
        r = resolve(base + m.group(1)) or (parent or None)
        if r: out.add(r)
    # a module file naming its own child modules by relative path (`browse::albums`)
    for child in mods:
        if child.rsplit('::', 1)[0] == mod and '::' in child or ('::' not in child and mod == 'crate'):
            short = child.rsplit('::', 1)[-1]
            if re.search(r'(?<![\w:])' + short + r'::', text):
                out.add(child)
    out.discard(mod)
    out.discard('crate')
    # a file does not import its own parent module file by naming its children
    return out

def scc(nodes, edges):
    index, low, on, stack, res, i = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            res.append(comp)
    for v in nodes:
        if v not in index: visit(v)
    return res

def main(src, verbose=False):
    mods = modules(src)
    edges = {m: set() for m in mods if m != 'crate'}
    for m in edges:
        text = strip(open(mods[m]).read())
        edges[m] = {d for d in imports(m, text, mods) if d in edges}
    comps = scc(list(edges), edges)
    comp_of = {v: k for k, c in enumerate(comps) for v in c}
    # floors on the condensation (Tarjan gives reverse topological order)
    floor = {}
    for k, c in enumerate(comps):
        below = [floor[comp_of[w]] for v in c for w in edges[v] if comp_of[w] != k]
        floor[k] = 1 + max(below, default=0)
    circles = [sorted(c) for c in comps if len(c) > 1]
    # arrows back up: inside each circle, order files by how many circle members import them
    back = []
    for c in circles:
        cs = set(c)
        order, rest = [], set(c)
        while rest:
            # pick the file with fewest imports into the rest (sink-like first)
            v = min(rest, key=lambda v: (len(edges[v] & rest), -sum(v in edges[u] for u in rest), v))
            order.append(v); rest.discard(v)
        pos = {v: n for n, v in enumerate(order)}
        back += [(v, w) for v in c for w in edges[v] if w in cs and pos[w] > pos[v]]
    print(f"{len(edges)} files on {max(floor.values(), default=0)} floors, "
          f"{len(back)} imports running back up, {len(circles)} import circle(s)"
          + (" of " + ", ".join(str(len(c)) for c in circles) + " files" if circles else ""))
    for c in circles:
        print("  circle:", " ".join(c))
    for v, w in sorted(back):
        print(f"  back up: {v} -> {w}")
    if verbose:
        for k in sorted(set(floor.values())):
            print(f"  floor {k}:", " ".join(sorted(v for v in edges if floor[comp_of[v]] == k)))
    return len(circles)

if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('-')]
    check = '--check' in sys.argv
    circles = 0
    for src in args:
        if len(args) > 1:
            print(f"{src}: ", end='')
        circles += main(src.rstrip('/'), verbose='-v' in sys.argv)
    if check and circles:
        print(f"structure.py: FAILED: {circles} import circle(s); break each by moving what the "
              "files share into a module below them", file=sys.stderr)
        sys.exit(1)
