"""Print one line summing pytest's JUnit XML reports: `tests: N passed, N failed, N skipped`.

Each report's own counts are printed above it; a missing or unreadable report is an error,
so the line never claims tests that did not run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def counts(path: str) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    return total


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    for path in paths:
        try:
            c = counts(path)
        except (OSError, ET.ParseError) as exc:
            print(f"{path}: no readable JUnit report ({exc})", file=sys.stderr)
            return 1
        suite_failed = c["failures"] + c["errors"]
        suite_passed = c["tests"] - suite_failed - c["skipped"]
        print(f"{path}: {suite_passed} passed, {suite_failed} failed, {c['skipped']} skipped")
        passed += suite_passed
        failed += suite_failed
        skipped += c["skipped"]
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
