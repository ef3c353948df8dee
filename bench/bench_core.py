"""Core benchmark: check and export of a 100,000-petition archive, cold, warm
and after a 10-file change, against the project's targets.

    python bench/bench_core.py [--count 100000] [--keep DIR]

Every step runs as its own process (``python -m generator ...``); its wall
time is measured here and its peak memory comes from ``os.wait4``, which
reports the process's own peak and that of the children it waited for (git).
"Cold" means the check cache (``<repo>/.git/wenzheng-cache``) is removed first;
"warm" runs the same command again with nothing changed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-22T10:00:00+08:00"
GB = 1024 ** 3


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    peak_bytes: int
    exit_code: int
    target_seconds: float | None
    output: str
    judged: bool = True

    @property
    def verdict(self) -> str:
        if self.exit_code != 0:
            return f"FAIL (exit {self.exit_code})"
        if not self.judged:
            return "(not judged)"
        slow = self.target_seconds is not None and self.seconds >= self.target_seconds
        return "MISS" if slow or self.peak_bytes >= 2 * GB else "PASS"


def run(name: str, args: list[str], target: float | None, judged: bool = True) -> Step:
    """Run one command, returning its wall time, peak memory and exit code."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = tempfile.TemporaryFile()
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "generator", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.seek(0)
    output = log.read().decode("utf-8", "replace")
    log.close()
    return Step(name, seconds, usage.ru_maxrss * 1024, proc.returncode, target, output, judged)


def drop_cache(repo: Path) -> None:
    shutil.rmtree(repo / ".git" / "wenzheng-cache", ignore_errors=True)


def table(steps: list[Step]) -> str:
    """Return the results as an aligned text table."""
    rows = [("step", "seconds", "peak MB", "target", "result")]
    for s in steps:
        target = f"< {s.target_seconds:g} s, < 2 GB" if s.target_seconds else ("< 2 GB" if s.judged else "")
        rows.append((s.name, f"{s.seconds:.2f}", f"{s.peak_bytes / 2**20:.0f}", target, s.verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="petitions to synthesise")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--now", default=NOW, help="the archive's now (ISO time with offset)")
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--repo", type=Path,
                        help="time an archive synthesised earlier (wenzheng synth) instead of making one; "
                        "the targets, which are for 100,000 petitions, are then not judged. It gets "
                        "one more commit (the 10-file change).")
    opts = parser.parse_args()

    work = opts.keep or Path(tempfile.mkdtemp(prefix="wenzheng-bench-"))
    repo = opts.repo or work / "repo"
    if repo.exists() and not opts.repo:
        sys.exit(f"{repo} already exists; remove it or give another --keep folder")
    work.mkdir(parents=True, exist_ok=True)
    out = work / "export.json"
    later = (datetime.fromisoformat(opts.now) + timedelta(hours=3)).isoformat()
    steps: list[Step] = []
    judged = opts.repo is None

    def timed(name: str, args: list[str], seconds: float) -> Step:
        """Run a step against its target, or only report it (an archive given with --repo)."""
        return run(name, args, seconds if judged else None, judged)
    try:
        if not opts.repo:
            steps.append(run(f"synth {opts.count:,} petitions",
                             ["synth", "--count", str(opts.count), "--seed", str(opts.seed),
                              "--now", opts.now, "--repo", str(repo), "--quiet", "--config-from", str(ROOT)],
                             None))
            if steps[-1].exit_code:
                print(steps[-1].output)
                return 1
            print(steps[-1].output.strip())
        check = ["check", "--repo", str(repo)]
        export = ["export", "--repo", str(repo), "--format", "json", "--out", str(out), "--now", opts.now]
        drop_cache(repo)
        steps.append(timed("check, cold", check, 90))
        drop_cache(repo)
        steps.append(timed("export json, cold", export, 90))
        steps.append(timed("check, warm", check, 15))
        steps.append(timed("export json, warm", export, 15))
        base = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        change = run("add 10 event files", ["synth", "--changes", "10", "--repo", str(repo),
                                             "--seed", "1", "--now", later], None)
        if change.exit_code:
            print(change.output)
            return 1
        steps.append(timed("check --changed-since (10 files)",
                           ["check", "--repo", str(repo), "--changed-since", base], 2))
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(steps))
    for s in steps:
        if s.exit_code:
            print(f"\n--- {s.name} (exit {s.exit_code}) ---\n{s.output[-2000:]}")
    if opts.keep:
        print(f"\nkept: {repo}")
    return 0 if all(s.verdict in ("PASS", "(not judged)") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
