#!/usr/bin/env python3
"""Checks that every code snippet in the given Markdown files is a copy of a region of a source
file that the build compiles, so that the documentation cannot drift from working code.

A snippet is a fenced code block preceded (on the line before its opening fence) by a marker:

    <!-- snippet: examples/echoclient_ssl.cc#connect -->
    ```cpp
    ...
    ```

and the named file holds the region between two comment lines:

    // [snippet connect]
    ...
    // [end snippet]

The block must equal the region's lines with their common indentation removed. A fenced block
without a marker is an error too (unless its language is "sh", "text", "python", "ini" or
"starlark": commands, output and configuration are not C++ the build compiles).

  tools/check_snippets.py ROOT README.md examples/README.md   # exit 0 when all match
"""
import os
import re
import sys
import textwrap

MARKER = re.compile(r"<!--\s*snippet:\s*([^#\s]+)#([\w.-]+)\s*-->")
START = re.compile(r"^\s*//\s*\[snippet ([\w.-]+)\]\s*$")
END = re.compile(r"^\s*//\s*\[end snippet\]\s*$")
FREE_LANGUAGES = {"sh", "text", "python", "ini", "starlark", "console"}


def regions(path):
    found = {}
    name = None
    lines = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if name is None:
                m = START.match(line)
                if m:
                    name, lines = m.group(1), []
            elif END.match(line):
                found[name] = textwrap.dedent("".join(lines)).rstrip("\n")
                name = None
            elif not START.match(line):
                lines.append(line)
    if name is not None:
        raise ValueError(f"{path}: snippet '{name}' has no '// [end snippet]'")
    return found


def check(root, doc):
    errors = []
    text = open(os.path.join(root, doc), encoding="utf-8").read().split("\n")
    i = 0
    count = 0
    while i < len(text):
        line = text[i]
        fence = re.match(r"^```(\w*)\s*$", line)
        if not fence:
            i += 1
            continue
        lang = fence.group(1)
        j = i + 1
        while j < len(text) and text[j].strip() != "```":
            j += 1
        body = "\n".join(text[i + 1:j])
        marker = MARKER.search(text[i - 1]) if i > 0 else None
        if marker:
            source, name = marker.group(1), marker.group(2)
            try:
                want = regions(os.path.join(root, source)).get(name)
            except (OSError, ValueError) as e:
                errors.append(f"{doc}:{i + 1}: {e}")
                want = None
            if want is None and not errors:
                errors.append(f"{doc}:{i + 1}: {source} has no snippet '{name}'")
            elif want is not None and want != body:
                errors.append(f"{doc}:{i + 1}: the block differs from {source}#{name}; "
                              f"copy the region again:\n{want}")
            count += 1
        elif lang not in FREE_LANGUAGES:
            errors.append(f"{doc}:{i + 1}: a ```{lang or '(no language)'} block without a "
                          "<!-- snippet: FILE#NAME --> marker on the line before")
        i = j + 1
    return count, errors


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1]
    total = 0
    failed = []
    for doc in argv[2:]:
        count, errors = check(root, doc)
        total += count
        failed += errors
    for e in failed:
        print(e, file=sys.stderr)
    if failed:
        return 1
    print(f"{total} snippets match their sources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
