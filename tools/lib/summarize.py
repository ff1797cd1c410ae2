"""Counts test results for tools/test.

  summarize.py doctest TESTLOG_JSON   meson's build/meson-logs/testlog.json
  summarize.py junit JUNIT_XML        pytest's --junitxml output

Prints one line "PASSED FAILED SKIPPED" on stdout, and explanations on stderr.
Exits 0 when counting worked (even with failures), 2 when there was nothing to count.
"""
import json
import re
import sys
import xml.etree.ElementTree as ET

# doctest's own summary line, e.g.
# [doctest] test cases: 12 | 11 passed | 1 failed | 0 skipped
DOCTEST = re.compile(
    r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed"
    r"(?:\s*\|\s*(\d+) skipped)?")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def doctest(path):
    passed = failed = skipped = 0
    executables = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return None
    for rec in records:
        executables += 1
        name = rec.get("name", "?")
        result = rec.get("result", "?")
        out = ANSI.sub("", (rec.get("stdout") or "") + "\n" + (rec.get("stderr") or ""))
        found = DOCTEST.findall(out)
        if not found:
            # crashed, timed out, or not a doctest executable: one failure, not zero
            print(f"  {name}: {result}, no doctest summary line (counted as one test)",
                  file=sys.stderr)
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
            continue
        _, p, fl, sk = found[-1]
        p, fl, sk = int(p), int(fl), int(sk or 0)
        passed += p
        failed += fl
        skipped += sk
        if result not in ("OK", "EXPECTEDFAIL") and fl == 0:
            # every case passed but the process failed (sanitizer report, crash at exit)
            print(f"  {name}: {result} (exit code {rec.get('returncode')}) although its "
                  f"test cases passed", file=sys.stderr)
            failed += 1
    if executables == 0:
        print("no unit test executables ran", file=sys.stderr)
        return None
    return passed, failed, skipped


def junit(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failures = errors = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failures += int(s.get("failures", 0))
        errors += int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    if tests == 0:
        print("no test ran", file=sys.stderr)
        return None
    # pytest counts a teardown error of a passed test as one more "test"
    failed = failures + errors
    return max(tests - failed - skipped, 0), failed, skipped


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("doctest", "junit"):
        print(__doc__, file=sys.stderr)
        return 2
    counts = (doctest if sys.argv[1] == "doctest" else junit)(sys.argv[2])
    if counts is None:
        return 2
    print(*counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
