"""``python -m benchmarks [--quick] [--only 1,4]``: run the figures and print the table."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import warnings
from collections.abc import Sequence

from .common import Row, fmt_time

#: Figure number -> module (``module:function`` where not ``run``); each function is
#: ``(quick: bool) -> Row``.
FIGURES = {
    1: "turn",
    2: "load",
    3: "history",
    4: "stream",
    5: "transcripts",
    6: "widget",
    7: "window",
    8: "tools",
    9: "many",
    10: "http_api",
    11: "http_api:run_first_token",
}
HEADERS = ("figure", "baseline", "ours", "ratio", "target", "result")


def machine() -> str:
    """One line naming the machine, so a table is never read without its context."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f}"
    return (
        f"{cpu}, {os.cpu_count()} CPUs{load}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def value(row: Row, amount: float) -> str:
    return fmt_time(amount) if row.unit == "s" else f"{amount:,.0f} {row.unit}"


def table(rows: Sequence[Row]) -> str:
    """The figures as a Markdown table (readable as text too), then each figure's details."""
    cells = [
        (r.figure, value(r, r.baseline), value(r, r.ours), f"{r.ratio:.3f}", r.target,
         "pass" if r.passed else "FAIL")
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(HEADERS, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.append("")
    for row in rows:
        lines.append(f"{row.figure}:")
        lines += [f"    {line}" for line in row.details]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repetitions: a smoke check, not a measurement")
    parser.add_argument("--only", default="", help="comma-separated figure numbers, e.g. 1,4")
    args = parser.parse_args(argv)
    wanted = [int(n) for n in args.only.split(",") if n.strip()] or list(FIGURES)
    warnings.simplefilter("ignore")  # the SDK's deprecation notice, once per process

    print(f"machine: {machine()}", flush=True)
    rows = []
    for number in wanted:
        name, _, function = FIGURES[number].partition(":")
        module = importlib.import_module(f"benchmarks.{name}")
        start = time.perf_counter()
        rows.append(getattr(module, function or "run")(args.quick))
        print(f"figure {number} done in {time.perf_counter() - start:.1f} s", flush=True)
    print()
    print(table(rows))
    if args.quick:
        print("\n(--quick: tiny sizes, the figures are not meaningful)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
