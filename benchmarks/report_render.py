"""Report render: the interactive HTML page of 5,000 items x 3 models, against its budget.

Targets (issue 16): rendering (`llmcompare.report.write_html`) takes under 2 s and the file is
under 10 MB. The record is built directly (tests/helpers/report_data.py's `large`), not by running
models: only rendering is timed, best of the rounds (the first also pays Jinja2's template
compile and imports, as a user's one `llmcompare report` does, and is shown apart).

Each line prints the measure, its ratio to the budget and PASS/FAIL; the script exits 1 on a
miss (`--no-fail` only reports). `--quick`: fewer rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.report_data import large
from llmcompare.report import write_html

BUDGET_S = 2.0
BUDGET_MB = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even on a miss")
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"report_render: ignoring arguments {ignored}", file=sys.stderr)
    rounds = 2 if args.quick else 5
    record = large(args.items)
    print(
        f"report render: {len(record.items)} items x {len(record.run.models)} models, "
        f"best of {rounds} rounds",
        flush=True,
    )
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        for _ in range(rounds):
            start = time.perf_counter()
            write_html(record, path)
            times.append(time.perf_counter() - start)
        size_mb = path.stat().st_size / 1e6
    best = min(times)
    ok_time, ok_size = best < BUDGET_S, size_mb < BUDGET_MB
    print(f"  first render (imports, template compile): {times[0]:.2f} s")
    print(
        f"  render: {best:.2f} s = {best / BUDGET_S:.2f} x the {BUDGET_S:g} s budget "
        f"{'PASS' if ok_time else 'FAIL'}"
    )
    print(
        f"  file: {size_mb:.2f} MB = {size_mb / BUDGET_MB:.2f} x the {BUDGET_MB:g} MB budget "
        f"{'PASS' if ok_size else 'FAIL'}"
    )
    return 0 if (ok_time and ok_size) or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
