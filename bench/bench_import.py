"""Import rate: synthesise a 100,000-row hotline CSV and time ``wenzheng import`` on it.

Prints rows per second for reading and planning, for writing through git
the pack write, and for the whole run, plus peak memory (this process and its
git children). Everything happens in a temporary folder that is removed.

    python bench/bench_import.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator import gitio  # noqa: E402
from generator import importer  # noqa: E402
from generator.check import read_departments  # noqa: E402
from generator import load  # noqa: E402

MAPPING = """\
system: bench-hotline
timezone: Asia/Shanghai
columns:
  id: 工单编号
  received_at: 受理时间
  category: 诉求类型
  channel: 来源
  department: 承办单位
  title: 标题
  text: [内容]
  reply_text: 答复内容
  closed_at: 办结时间
  status: 状态
  due_at: 办理时限
  district: 区县
time_formats:
  default: ["%Y-%m-%d %H:%M:%S"]
values:
  category: {投诉: complaint, 咨询: consultation, 求助: help, 建议: suggestion, 举报: report}
  channel: {电话: phone, 网站: web, 微信: wechat}
  status: {已办结: closed, 办理中: open}
  department: {住建局: housing, 交通局: transport, 城管局: urban-management, 教育局: education}
"""


def synthesise(path: Path, rows: int, seed: int = 6) -> None:
    """Write a CSV of ``rows`` plausible hotline records (85 % closed)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 8, 0)
    cats, chans = ["投诉", "咨询", "求助", "建议", "举报"], ["电话", "网站", "微信"]
    depts = ["住建局", "交通局", "城管局", "教育局"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("工单编号,受理时间,诉求类型,来源,承办单位,标题,内容,答复内容,办结时间,状态,办理时限,区县\n")
        for i in range(rows):
            received = start + timedelta(minutes=5 * i + rng.randrange(5))
            due = received + timedelta(days=5)
            closed = received + timedelta(hours=rng.randrange(1, 200))
            done = rng.random() < 0.85
            fh.write(",".join([
                f"GD{i:08d}", f"{received:%Y-%m-%d %H:%M:%S}", rng.choice(cats), rng.choice(chans),
                rng.choice(depts), f"小区路灯损坏第{i}号", "东湖区湖滨路小区门口的路灯坏了三周，夜间出行不便。",
                "已安排维修，现已修复。" if done else "", f"{closed:%Y-%m-%d %H:%M:%S}" if done else "",
                "已办结" if done else "办理中", f"{due:%Y-%m-%d %H:%M:%S}", "东湖区"]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "hotline.csv"
        t0 = time.perf_counter()
        synthesise(src, args.rows)
        print(f"synthesised {args.rows:,} rows ({src.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - t0:.1f} s")
        repo = tmp_path / "archive"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        for name in ("departments.yaml", "rules.yaml"):
            (repo / name).write_bytes((ROOT / name).read_bytes())
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=B", "-c", "user.email=b@localhost",
                        "commit", "-q", "-m", "config"], check=True)
        (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")

        t0 = time.perf_counter()
        departments, _ = read_departments(load.snapshot_at(repo, "main", folders=[]))
        mapping, problems = importer.load_mapping(MAPPING, str(tmp_path / "mapping.yaml"), departments)
        assert mapping is not None, problems
        source = importer.read_source(src, mapping)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        existing = importer.read_existing(repo, "main", mapping.system)
        plan = importer.plan_import(source.rows, mapping, existing, departments, src.name, now)
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        old = importer.gitio.rev_parse(repo, "refs/heads/main")
        commit = importer.write_plan(repo, "main", plan, "bench import", now)
        t_write = time.perf_counter() - t0
        # main is checked out: its index and files follow the new commit, as after `wenzheng import`.
        t0 = time.perf_counter()
        assert not gitio.advance_worktrees(repo, "refs/heads/main", old, commit)
        t_tree = time.perf_counter() - t0
        total = t_read + t_plan + t_write + t_tree
        assert not plan.problems and plan.new_petitions == args.rows and commit
        print(f"read CSV     {t_read:7.1f} s  {args.rows / t_read:9,.0f} rows/s")
        print(f"plan+check   {t_plan:7.1f} s  {args.rows / t_plan:9,.0f} rows/s")
        print(f"write        {t_write:7.1f} s  {args.rows / t_write:9,.0f} rows/s "
              f"({len(plan.files):,} files)")
        print(f"work tree    {t_tree:7.1f} s  {args.rows / t_tree:9,.0f} rows/s "
              "(index and files of the checked-out branch)")
        print(f"import total {total:7.1f} s  {args.rows / total:9,.0f} rows/s")

        t0 = time.perf_counter()
        existing = importer.read_existing(repo, "main", mapping.system)
        again = importer.plan_import(source.rows, mapping, existing, departments, src.name, now)
        t_again = time.perf_counter() - t0
        assert not again.files
        print(f"re-import (nothing new) {t_again:.1f} s  {args.rows / t_again:,.0f} rows/s")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak memory: {own:.0f} MB (python), {kids:.0f} MB (largest git child)")


if __name__ == "__main__":
    main()
