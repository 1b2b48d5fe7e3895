#!/usr/bin/env python3
"""Checks the shape rules of src/ that a reader pays for when they slip:

- no file in src/ over 500 lines (a file's `#[cfg(test)]` module not counted);
- no function in src/ over 80 lines (unit tests not counted);
- at most 40 public names at the crate root (`pub use`, `pub mod`, and items
  declared in lib.rs).

Exits non-zero naming every offender. Run from anywhere:
`python3 scripts/check_shape.py`. CI runs it.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_FILE = 500
MAX_FN = 80
MAX_ROOT = 40


def strip(line: str, in_block: bool) -> tuple[str, bool]:
    """The line without comments, string and char literals (so braces count)."""
    out = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block = True
            i += 2
            continue
        if c == '"' or line.startswith('r#"', i) or line.startswith('r"', i):
            # A string literal: skip to its end on this line (multi-line strings
            # hold no braces in this crate's code that matter to a count).
            if c == "r":
                hashes = len(line[i + 1 :]) - len(line[i + 1 :].lstrip("#"))
                close = '"' + "#" * hashes
                start = line.find('"', i) + 1
                end = line.find(close, start)
                i = len(line) if end < 0 else end + len(close)
            else:
                j = i + 1
                while j < len(line) and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                i = j + 1
            continue
        if c == "'":
            m = re.match(r"'(\\.|[^\\'])'", line[i:])
            if m:
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def code_lines(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line number, code) of the file, its `#[cfg(test)]` modules dropped."""
    lines = path.read_text().splitlines()
    out = []
    in_block = False
    skip_depth = None
    depth = 0
    pending_test = False
    for n, raw in enumerate(lines, 1):
        code, in_block = strip(raw, in_block)
        stripped = code.strip()
        if skip_depth is None and stripped.startswith("#[cfg(test)]"):
            pending_test = True
            continue
        if pending_test and skip_depth is None and stripped.startswith("mod "):
            skip_depth = depth
            pending_test = False
        elif pending_test and stripped and not stripped.startswith("#"):
            pending_test = False
        opens, closes = code.count("{"), code.count("}")
        if skip_depth is not None:
            depth += opens - closes
            if depth <= skip_depth and "}" in code:
                skip_depth = None
            continue
        depth += opens - closes
        out.append((n, code))
    return out


FN = re.compile(r"^\s*(pub(\([a-z:]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def long_functions(path: pathlib.Path, lines: list[tuple[int, str]]) -> list[str]:
    found = []
    i = 0
    while i < len(lines):
        n, code = lines[i]
        m = FN.match(code)
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            c = lines[j][1]
            # A declaration without a body (a trait method) ends at `;`.
            if not started and "{" not in c and c.rstrip().endswith(";"):
                break
            depth += c.count("{") - c.count("}")
            started = started or "{" in c
            if started and depth <= 0:
                break
            j += 1
        length = lines[min(j, len(lines) - 1)][0] - n + 1
        if started and length > MAX_FN:
            found.append(f"{path.relative_to(ROOT)}:{n}: fn {m.group(7)} is {length} lines (max {MAX_FN})")
        i += 1
    return found


def root_names() -> list[str]:
    text = (SRC / "lib.rs").read_text()
    text = re.sub(r"pub mod prelude \{.*?\n\}", "", text, flags=re.S)
    names = []
    for m in re.finditer(r"pub use ([^;]+);", text):
        body = m.group(1)
        if "{" in body:
            inner = body[body.index("{") + 1 : body.rindex("}")]
            items = [s.strip() for s in inner.split(",")]
        else:
            items = [body.strip()]
        for item in items:
            if not item:
                continue
            names.append(item.split(" as ")[-1].split("::")[-1].strip())
    names += re.findall(r"^pub mod (\w+)", text, flags=re.M)
    names += re.findall(r"^pub (?:fn|struct|enum|trait|type|const|static) (\w+)", text, flags=re.M)
    names += ["prelude"] if "pub mod prelude" in (SRC / "lib.rs").read_text() else []
    return sorted(set(names))


def main() -> int:
    problems = []
    for path in sorted(SRC.rglob("*.rs")):
        lines = code_lines(path)
        counted = len(lines)
        if counted > MAX_FILE:
            problems.append(f"{path.relative_to(ROOT)}: {counted} lines outside its tests (max {MAX_FILE})")
        problems += long_functions(path, lines)
    names = root_names()
    if len(names) > MAX_ROOT:
        problems.append(f"src/lib.rs: {len(names)} public names at the crate root (max {MAX_ROOT}): {names}")
    for p in problems:
        print(p)
    print(f"shape: {len(problems)} problems; {len(names)} names at the crate root")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
