#!/usr/bin/env bash
# Every C++ block in README.md and examples/README.md is a copy of a region of a source file the
# build compiles (tools/check_snippets.py says how): fails, naming the block and the region, when
# one of them changed without the other.
set -euo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/whorl"
exec python3 "$RUNFILES/tools/check_snippets.py" "$RUNFILES" README.md examples/README.md
