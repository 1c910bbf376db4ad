#!/usr/bin/env python3
"""Checks the structure rules of docs/architecture.md that the compiler does not:

1. No production module is longer than MAX_MODULE_LINES lines. A module's production part
   ends at its `#[cfg(test)]` block; test files (`tests.rs`, `*_tests.rs`, `tests/`,
   `benches/`, the contract suites and the `tests` crate's helpers) are not production.
2. No import cycle between sibling modules: within each crate and each module folder, the
   graph "module A uses module B" (through `crate::`, `super::` or `self::` paths) has no
   cycle, so each folder's modules can be read bottom-up.

Function length is checked by clippy (`too_many_lines`, threshold in clippy.toml).

Prints each violation with the fix and exits 1 if there is any. Run from the repository
root: `python3 scripts/check-structure.py`.
"""

import os
import re
import sys

CRATES = ["schemas", "telemetry", "store", "proxy", "metering", "control", "admin", "cli"]
MAX_MODULE_LINES = 500

# Modules allowed past the limit, each with the reason. Keep this list short.
MODULE_SIZE_EXCEPTIONS = {}

USE_PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_BLOCK = re.compile(r"\buse\s+(crate|super|self)::\{([^;]*)\};", re.S)


def is_test_file(path):
    name = os.path.basename(path)
    parts = path.split(os.sep)
    return (
        name == "tests.rs"
        or name.endswith("_tests.rs")
        or "tests" in parts[1:-1]
        or "benches" in parts
        or "contract" in parts
    )


def production_lines(text):
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            return lines[:index]
    return lines


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def module_path(crate_src, path):
    """The module path of a source file, as a list: src/a/b.rs and src/a/b/mod.rs are a::b."""
    relative = os.path.relpath(path, crate_src)[: -len(".rs")]
    parts = relative.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def source_files(crate_src):
    for directory, _, names in os.walk(crate_src):
        if os.sep + "bin" in directory[len(crate_src):] + os.sep:
            continue
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.join(directory, name)


def references(module, text):
    """The absolute module paths a module's code names."""
    found = []
    code = strip_comments("\n".join(production_lines(text)))
    for match in USE_BLOCK.finditer(code):
        root, inner = match.groups()
        for item in re.split(r"[,{}\s]+", inner):
            item = item.strip()
            if item and re.match(r"[a-z_][a-z0-9_]*", item):
                found.append(resolve(module, root, ["" + item.split("::")[0]]))
    for match in USE_PATH.finditer(code):
        root, rest = match.groups()
        found.append(resolve(module, root, rest.strip(":").split("::")))
    return [path for path in found if path]


def resolve(module, root, segments):
    if root == "crate":
        base = []
    elif root == "super":
        base = module[:-1]
        while segments and segments[0] == "super":
            base = base[:-1]
            segments = segments[1:]
    else:
        base = list(module)
    return base + [segment for segment in segments if segment]


def sibling_edges(modules):
    """Edges between sibling modules: A::x uses A::y (or something inside A::y)."""
    known = set(tuple(module) for module in modules)
    edges = {}
    for module, targets in modules.items():
        for target in targets:
            # the longest known module the path names
            for length in range(len(target), 0, -1):
                if tuple(target[:length]) in known:
                    target = list(target[:length])
                    break
            else:
                continue
            # the two modules' branches below their common parent
            common = 0
            while (
                common < min(len(module), len(target))
                and module[common] == target[common]
            ):
                common += 1
            if common == len(module) or common == len(target):
                continue  # a module and its own descendants or ancestors
            source = tuple(module[: common + 1])
            destination = tuple(target[: common + 1])
            edges.setdefault(source, set()).add(destination)
    return edges


def cycles(edges):
    found = []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def main():
    problems = []
    for crate in CRATES:
        crate_src = os.path.join(crate, "src")
        if not os.path.isdir(crate_src):
            continue
        modules = {}
        for path in source_files(crate_src):
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            module = module_path(crate_src, path)
            if is_test_file(path):
                continue
            length = len(production_lines(text))
            if length > MAX_MODULE_LINES and path not in MODULE_SIZE_EXCEPTIONS:
                problems.append(
                    f"{path}: {length} production lines, over {MAX_MODULE_LINES}; "
                    "split it by role into a folder of smaller modules"
                )
            modules[tuple(module)] = references(module, text)
        for cycle in cycles(sibling_edges(modules)):
            names = " -> ".join("::".join((crate,) + node) for node in cycle)
            problems.append(
                f"import cycle: {names}; move what both need into a lower module"
            )
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} structure problem(s); see docs/architecture.md")
        return 1
    print("structure: module sizes and module imports are within the rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
