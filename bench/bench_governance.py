"""Time the pull-request check on a large archive and the audit's rate.

Run: PYTHONPATH=. python bench/bench_governance.py [PETITIONS] [HISTORY_PETITIONS]
(defaults 1,000,000 and 2,000; the big archive is built once under
$TMPDIR/wenzheng-bench-<N> and reused).

1. An archive of PETITIONS petitions (each with its assignment) in one commit,
   written with ArchiveWriter, then a pull request by housing adding 10 event
   files to 10 cases it holds. Timed: ``check_change`` exactly as
   ``wenzheng check --base main --author mh-housing`` runs it (target < 2 s),
   first with a cold parse cache, then warm.
2. A pull-request history of HISTORY_PETITIONS petitions (tests/history_util),
   audited from the first commit: commits per second.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator import governance  # noqa: E402
from generator.audit import audit_history  # noqa: E402
from generator.gitio import ArchiveWriter, git, init_repo  # noqa: E402
from tests.history_util import build_history  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
DEPTS = ["housing", "transport", "urban-management", "environment", "water", "education"]


def _petition(pid: str, at: datetime) -> bytes:
    return (f"id: '{pid}'\nreceived_at: {at.isoformat()}\nchannel: web\ncategory: complaint\n"
            f"title: 路灯损坏 {pid}\nbody: |\n  小区门口路灯损坏，请尽快修复。\n"
            "petitioner: {display_name: 网友 a1}\n").encode()


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def build_archive(repo: Path, n: int) -> list[str]:
    """Write ``n`` petitions, each assigned, in one commit; return the housing folders."""
    init_repo(repo)
    start = datetime(2024, 1, 1, 9, 0, tzinfo=CST)
    span = 3 * 365 * 24 * 3600 - 30 * 24 * 3600  # received over about three years
    housing = []
    with ArchiveWriter(repo, "main") as w:
        def files():
            yield from ((name, (ROOT / name).read_bytes()) for name in ("departments.yaml", "rules.yaml"))
            for i in range(n):
                at = start + timedelta(seconds=(i * span) // n)
                pid = f"{at:%Y}-{i + 1:07d}"
                folder = f"petitions/{at:%Y}/{at:%m}/{pid}"
                dept = DEPTS[i % len(DEPTS)]
                if dept == "housing" and len(housing) < 10 and at.year == 2026:
                    housing.append(folder)
                yield f"{folder}/petition.yaml", _petition(pid, at)
                assigned = at + timedelta(minutes=20)
                yield (f"{folder}/{_stamp(assigned)}-assigned.yaml",
                       f"kind: assigned\nat: {assigned.isoformat()}\nby: centre\nto: {dept}\n".encode())
        w.commit(files(), "Archive", int(start.timestamp()), "mh-centre-lead <mh-centre-lead@localhost>")
    return housing


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    history_n = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    base = Path(tempfile.gettempdir()) / f"wenzheng-bench-{n}"
    marker = base / "housing.txt"
    t0 = time.perf_counter()
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        housing = build_archive(base, n)
        marker.write_text("\n".join(housing))
        print(f"built an archive of {n:,} petitions in {time.perf_counter() - t0:.1f} s")
    housing = marker.read_text().split()
    git(base, "branch", "-f", "pr", "main")
    now = datetime(2026, 12, 20, 10, 0, tzinfo=CST)
    at = now - timedelta(minutes=30)
    with ArchiveWriter(base, "pr") as w:
        w.commit([(f"{f}/{_stamp(at)}-accepted.yaml",
                   f"kind: accepted\nat: {at.isoformat()}\nby: housing\n".encode()) for f in housing],
                 "Accept 10 cases", int(at.timestamp()), "mh-housing <mh-housing@localhost>")
    cache = base / ".git" / "wenzheng-cache"
    for label in ("cold cache", "warm cache"):
        if label == "cold cache":
            shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        result = governance.check_change(base, "main", "mh-housing", now, head="pr")
        took = time.perf_counter() - t
        assert not result.errors, [p.render() for p in result.errors]
        print(f"pull-request check, {len(result.changes)}-file change in {n:,} petitions "
              f"({label}): {took:.2f} s (target < 2 s)")

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "history"
        t = time.perf_counter()
        commits, planted = build_history(repo, history_n, batch=max(20, history_n // 50))
        print(f"history of {history_n:,} petitions: {commits:,} commits built in "
              f"{time.perf_counter() - t:.1f} s")
        report = audit_history(repo, now=now)
        assert len(report.violations) == len(planted), len(report.violations)
        print(f"audit: {report.commits_checked:,} commits in {report.seconds:.1f} s = "
              f"{report.commits_checked / report.seconds:.0f} commits/s, "
              f"{len(report.violations)} planted violations found")


if __name__ == "__main__":
    main()
