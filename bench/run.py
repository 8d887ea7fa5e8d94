"""Run the benchmarks and write bench/results.md.

Each bench/bench_NAME.py is a script that prints a Markdown section to stdout.
`python bench/run.py` runs them all; `python bench/run.py NAME...` runs some and
keeps the other sections from their last run (bench/results/NAME.md).
Numbers are for comparing within one run: these machines are noisy.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.machine()}, {os.cpu_count()} cores, {cpu}{mem}; "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    chosen = [s for s in scripts if not names or s.stem.removeprefix("bench_") in names]
    failed = 0
    for script in chosen:
        name = script.stem.removeprefix("bench_")
        print(f"bench: {name} ...", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              cwd=HERE.parent)
        if proc.returncode != 0:
            failed += 1
            print(proc.stderr[-4000:], file=sys.stderr)
            continue
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        (RESULTS / f"{name}.md").write_text(
            proc.stdout.rstrip() + f"\n\n_Run {stamp} on: {machine()}._\n")
        print(proc.stdout)
    parts = [
        "# Benchmark results\n",
        "Written by `make bench` (`python bench/run.py`). Each section notes the machine and",
        "time of its run; compare ratios within a section, not absolute numbers across runs.\n",
    ]
    for md in sorted(RESULTS.glob("*.md")):
        parts.append(md.read_text().rstrip() + "\n")
    (HERE / "results.md").write_text("\n".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
