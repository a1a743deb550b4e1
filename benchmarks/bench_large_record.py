"""Benchmark one large single-line JSON Lines record: peak memory of reading it, `imdiag size`, and
`imdiag replay` (client side: the Node master runs in its own process).

Run: `.venv/bin/python benchmarks/bench_large_record.py [--mb 50]`. Four records of about that
size are generated into a temporary directory (never committed): a snapshot from the catalog
(CJK text, emoji, many small fields), ASCII items with small values, one ASCII string, one CJK
string. Each measurement runs in its own process (ru_maxrss of that process). Prints figures and
the target (peak < 3 x the record + 100 MB); asserts nothing. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(directory: Path, megabytes: int) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT))
    from imdiag.core.catalog import Catalog

    size = megabytes * 1_000_000
    snapshot = Catalog(3).sized("worker:data:sync", size).obj()
    items = [{"id": i, "v": "x" * 20, "n": [1, 2, 3]} for i in range(size // 53)]
    records = {
        "snapshot (CJK, emoji)": snapshot,
        "ASCII small values": {"type": "worker:data:sync", "payload": {"conversations": items}},
        "one ASCII string": {"type": "worker:data:sync", "payload": {"blob": "x" * size}},
        "one CJK string": {"type": "worker:data:sync", "payload": {"blob": "中" * (size // 3)}},
    }
    paths = {}
    for i, (name, record) in enumerate(records.items()):
        path = directory / f"record{i}.jsonl"
        path.write_text(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        paths[name] = path
    return paths


def run_one(what: str, path: str) -> None:
    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    if what == "read":
        from imdiag.core.captures import open_capture

        capture = open_capture(path)
        for _ in capture.messages():
            pass
        code = 0
    else:
        from imdiag.cli import main

        args = ["size", path] if what == "size" else [
            "replay", path, "--limit", "1GB", "--transports", "websocket", "--master", "node"]
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 0
        else:
            code = 0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(json.dumps({"what": what, "code": code, "wall_s": round(time.perf_counter() - start, 2),
                      "peak_mb": round(peak_kb / 1000, 1)}), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--one", nargs=2, metavar=("WHAT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    megabytes = max(1, min(args.mb, 500))
    if args.one:
        run_one(*args.one)
        return
    if args.generate:
        print(json.dumps({name: str(path) for name, path in generate(Path(args.generate), megabytes).items()}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # Generated in a process of its own: Linux keeps a process's peak RSS across exec, so the
        # measuring processes must not be children of one that held the records.
        made = subprocess.run([sys.executable, __file__, "--generate", tmp, "--mb", str(megabytes)], check=True,
                              capture_output=True, text=True, timeout=1800)
        for name, path_text in json.loads(made.stdout).items():
            path = Path(path_text)
            size = path.stat().st_size
            target_mb = (3 * size + 100_000_000) / 1e6
            print(f"{name}: {size / 1e6:.1f} MB on one line (target peak: under {target_mb:.0f} MB)")
            for what in ("read", "size", "replay"):
                done = subprocess.run([sys.executable, __file__, "--one", what, str(path)], check=False,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800)
                lines = done.stderr.strip().splitlines()
                if done.returncode != 0 or not lines or not lines[-1].startswith("{"):
                    print(f"  {what:6}: failed: {done.stderr.strip()[-300:]}")
                    continue
                figures = json.loads(lines[-1])
                verdict = "under" if figures["peak_mb"] < target_mb else "OVER"
                print(f"  {what:6}: peak {figures['peak_mb']:6.1f} MB ({verdict} the target), "
                      f"{figures['wall_s']:6.2f} s, exit {figures['code']}")


if __name__ == "__main__":
    main()
