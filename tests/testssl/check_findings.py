#!/usr/bin/env python3
"""Judges a testssl JSON file (--jsonfile) against the committed list of expected findings.

  check_findings.py --json scan.json --expected expected_findings.txt --target https_hello

A finding is every entry whose severity is LOW, MEDIUM, HIGH or CRITICAL (testssl's "not OK"
levels), or WARN (a check that could not run) or FATAL (the scan stopped). Each must be listed in
the expected file for this target, with that severity, or the check fails; every listed finding
must also appear (else the list is stale and hides nothing any more: delete the line). Lines of
the expected file: TARGET ID SEVERITY REASON..., TARGET being a program name or "*", SEVERITY a
testssl severity, or one followed by "?" for a finding that may or may not appear. Prints the
findings with their severities, then what is wrong, and exits 1 if anything is.
"""
import argparse
import json
import sys

PROBLEM = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL")


def load_expected(path, target):
    expected = {}  # id -> (severity, optional, reason, line number)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 3)
            if len(parts) < 4:
                raise SystemExit(f"{path}:{n}: want TARGET ID SEVERITY REASON, got: {line}")
            who, ident, severity, reason = parts
            optional = severity.endswith("?")
            severity = severity.rstrip("?")
            if severity not in PROBLEM:
                raise SystemExit(f"{path}:{n}: severity {severity} is not one of {' '.join(PROBLEM)}")
            if who in ("*", target):
                expected[ident] = (severity, optional, reason, n)
    return expected


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="testssl --jsonfile output")
    ap.add_argument("--expected", required=True, help="the expected findings file")
    ap.add_argument("--target", required=True, help="the program scanned, as named in that file")
    args = ap.parse_args()

    try:
        with open(args.json, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: cannot read testssl's JSON output {args.json}: {e}")
        return 1
    if not isinstance(entries, list) or not entries:
        print(f"FAIL: {args.json} holds no findings: did testssl run?")
        return 1
    expected = load_expected(args.expected, args.target)

    problems = []
    seen = set()
    print(f"testssl findings for {args.target} (severity LOW and above, WARN, FATAL):")
    for e in entries:
        severity, ident, finding = e.get("severity", ""), e.get("id", "?"), e.get("finding", "")
        if severity not in PROBLEM:
            continue
        want = expected.get(ident)
        if want is not None and want[0] == severity:
            seen.add(ident)
            print(f"  expected    {severity:8} {ident}: {finding}")
            print(f"              why: {want[2]}")
        else:
            print(f"  UNEXPECTED  {severity:8} {ident}: {finding}")
            if want is not None:
                problems.append(f"{ident} is {severity} ({finding}); expected {want[0]} "
                                 f"({args.expected} line {want[3]})")
            else:
                problems.append(f"{ident} is {severity}: {finding}")
    for ident, (severity, optional, reason, n) in sorted(expected.items()):
        if ident not in seen and not optional:
            problems.append(f"expected finding {ident} ({severity}) no longer appears: delete line "
                            f"{n} of {args.expected} ({reason})")
    scanned = sum(1 for e in entries if e.get("severity") in ("OK", "INFO"))
    print(f"{scanned} checks OK or informational, {len(seen)} expected findings, "
          f"{len(problems)} problems")
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
