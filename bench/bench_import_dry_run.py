"""Dry-run speed: ``wenzheng import --dry-run`` on a 100,000-row hotline CSV.

Runs the installed command as a user would, on the CSV bench_import.py
synthesises with one bad row in 5,000 (a received time that is not a time),
and reads its output as it comes: how long until the plan is printed, until
the first problem is, and until the whole dry run is done. Target: the plan
and the first problems within seconds.

    python bench/bench_import_dry_run.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_import import MAPPING, ROOT, synthesise  # noqa: E402

TARGET_FIRST = 10.0  # seconds: the plan and the first problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "hotline.csv"
        synthesise(src, args.rows)
        lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
        bad = 0
        for i in range(1 + 4_999, len(lines), 5_000):  # one row in 5,000: an unreadable received time
            cells = lines[i].split(",")
            cells[1] = "not a time"
            lines[i] = ",".join(cells)
            bad += 1
        src.write_text("".join(lines), encoding="utf-8")
        repo = tmp_path / "archive"
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        for name in ("departments.yaml", "rules.yaml"):
            (repo / name).write_bytes((ROOT / name).read_bytes())
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=B", "-c", "user.email=b@localhost",
                        "commit", "-q", "-m", "config"], check=True)
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")

        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "import", str(src), "--mapping", str(mapping),
             "--repo", str(repo), "--dry-run", "--now", "2026-01-01T00:00:00+08:00"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        t_plan = t_first = None
        summary = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            at = time.perf_counter() - start
            if t_plan is None and line.startswith("plan:"):
                t_plan = at
            if t_first is None and ": error: " in line:
                t_first = at
            if "would add" in line:
                summary = line.strip()
        proc.wait()
        total = time.perf_counter() - start
    assert t_plan is not None and t_first is not None, "the dry run printed no plan or no problem"
    print(f"rows {args.rows:,}, bad rows {bad}")
    print(f"plan printed        {t_plan:6.1f} s")
    print(f"first problem       {t_first:6.1f} s   (target {TARGET_FIRST:.0f} s: "
          f"{'met' if t_first <= TARGET_FIRST else 'MISSED'})")
    print(f"dry run complete    {total:6.1f} s  {args.rows / total:9,.0f} rows/s")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
