"""Compare the verdicts of two `imdiag size-sweep --json` reports, cell by cell.

Run: `.venv/bin/python benchmarks/compare_verdicts.py BEFORE.json AFTER.json`. Cells are matched by
master, transport, limit, type, label and frame bytes; timings, evidence and byte figures aside,
a cell's verdict is whether it was delivered and its cause. Prints each difference; exit 1 if any.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def verdicts(path: str) -> dict[tuple[Any, ...], tuple[bool, str | None]]:
    with open(path, encoding="utf-8") as f:
        cells = json.load(f)["cells"]
    return {(c["master"], c["transport"], c["limit"], c["type"], c["label"], c["message_bytes"]):
            (c["delivered"], c["cause"]) for c in cells}


def main() -> None:
    before, after = verdicts(sys.argv[1]), verdicts(sys.argv[2])
    print(f"{len(before)} vs {len(after)} cells; only before: {len(before.keys() - after.keys())}, "
          f"only after: {len(after.keys() - before.keys())}")
    differing = [k for k in sorted(before.keys() & after.keys(), key=str) if before[k] != after[k]]
    for key in differing:
        print(f"  {key}: {before[key]} -> {after[key]}")
    print(f"{len(differing)} differing verdicts")
    sys.exit(1 if differing or before.keys() != after.keys() else 0)


if __name__ == "__main__":
    main()
