#!/usr/bin/env python3
"""Checks that the C++ in README.md and docs/*.md is the code of the examples.

A ```cpp block preceded by a line `<!-- from examples/NAME.cpp -->` must appear
in that file: its lines, with indentation and blank lines ignored, must occur
there in the same order and next to each other, except where the block has a
line `// ...`, which stands for any number of lines. The examples are built and
run by the 'examples' suite, so every checked block compiles and runs.

usage: check_doc_snippets.py SOURCE_ROOT [PAGE...]
PAGEs (relative to SOURCE_ROOT) may have no unchecked ```cpp block at all.
"""
import pathlib
import re
import sys

MARKER = re.compile(r"^<!--\s*from\s+(\S+)\s*-->$")
GAP = {"...", "// ..."}


def blocks(text):
    """(line number, marker path or None, code lines) for each ```cpp block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().startswith("```cpp"):
            start = i
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            m = MARKER.match(lines[j].strip()) if j >= 0 else None
            i += 1
            code = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            yield start + 1, (m.group(1) if m else None), code
        i += 1


def normalized(lines):
    return [l.strip() for l in lines if l.strip()]


def contains(haystack, block):
    segments, current = [], []
    for line in normalized(block):
        if line in GAP:
            segments.append(current)
            current = []
        else:
            current.append(line)
    segments.append(current)
    pos = 0
    for seg in segments:
        if not seg:
            continue
        found = next((k for k in range(pos, len(haystack) - len(seg) + 1) if haystack[k:k + len(seg)] == seg), None)
        if found is None:
            return seg[0]
        pos = found + len(seg)
    return None


def main():
    root = pathlib.Path(sys.argv[1])
    strict = set(sys.argv[2:])
    pages = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    errors, checked = [], 0
    for page in pages:
        if not page.exists():
            continue
        rel = page.relative_to(root).as_posix()
        for line, source, code in blocks(page.read_text()):
            if source is None:
                if rel in strict:
                    errors.append(f"{rel}:{line}: a ```cpp block without <!-- from examples/....cpp -->")
                continue
            path = root / source
            if not path.exists():
                errors.append(f"{rel}:{line}: {source} does not exist")
                continue
            missing = contains(normalized(path.read_text().splitlines()), code)
            if missing is not None:
                errors.append(f"{rel}:{line}: not in {source} as written; first differing part starts: {missing!r}")
            checked += 1
    for e in errors:
        print(e)
    print(f"{checked} code blocks checked against the examples, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
