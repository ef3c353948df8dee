"""Run every benchmark under bench/ and print its figures (``make bench``).

Each ``bench_*.py`` is a standalone script that prints its own table with the
targets it is measured against. Pass names to run only some:
``python bench/run.py core site``. Extra arguments after ``--`` go to every
script (e.g. ``-- --count 10000`` for a quick pass).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.monotonic()
        code = subprocess.call([sys.executable, str(script), *extra], cwd=HERE.parent)
        print(f"--- {script.stem}: exit {code}, {time.monotonic() - start:.1f} s", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print("benchmarks that failed to run: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
