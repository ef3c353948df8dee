"""Benchmark the site build on a synthesised archive.

Builds N petitions cold, then warm after one new reply (three times, each ten
minutes after the last build, as of that moment: the middle one is the
figure); reports total time,
pages per second, peak memory (this process and its children: mkdocs, Pagefind),
site size, the bytes of one petition page (gzipped, theme assets aside) and the
bytes one search downloads (measured in Chromium when it is installed).

    python bench/bench_site.py --petitions 100000
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gzip
import http.server
import json
import logging
import os
import resource
import shutil
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator import gitio, synth  # noqa: E402
from generator.build import build_site, release  # noqa: E402
from generator.records import event_file_name  # noqa: E402
from generator.render.writer import manifest_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TZ = timezone(timedelta(hours=8))
def yaml_event(kind: str, at: datetime, by: str, **fields) -> bytes:
    lines = [f"kind: {kind}", f"at: {at.isoformat()}", f"by: {by}"]
    for k, v in fields.items():
        lines.append(f"{k}: {str(v).lower() if isinstance(v, bool) else v}")
    return ("\n".join(lines) + "\n").encode()


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=TZ)


def synthesise(repo: Path, n: int, seed: int = 20261122) -> datetime:
    """Write ``n`` petitions received over the two years before NOW with
    ``wenzheng synth`` (its mix of categories, departments, clocks and outcomes,
    most cases long closed, the recent ones still open) in one commit; return
    the moment to build at."""
    spec = synth.SynthSpec(count=n, seed=seed, start=date(2024, 11, 22), months=24, now=NOW)
    synth.write_repo(spec, repo, extra_files=[(name, (ROOT / name).read_bytes())
                                              for name in ("departments.yaml", "rules.yaml")])
    return NOW


def add_reply(repo: Path, now: datetime) -> None:
    """Commit one final reply on the newest open petition."""
    import subprocess
    listing = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD", "petitions"],
                             capture_output=True, text=True, check=True).stdout.split()
    folders: dict[str, list[str]] = {}
    for path in listing:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    target = max((f for f, names in folders.items() if any("accepted" in x for x in names)
                  and not any("reply" in x for x in names)), key=lambda f: f.rsplit("/", 1)[1])
    dept = None  # the holder: the last department it was assigned or transferred to
    for name in sorted(folders[target]):
        if name.endswith(("-assigned.yaml", "-transferred.yaml")):
            text = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{target}/{name}"],
                                  capture_output=True, text=True, check=True).stdout
            dept = next(line.split(": ")[1] for line in text.splitlines() if line.startswith("to:"))
    at = now - timedelta(hours=1)
    with gitio.ArchiveWriter(repo, "main") as fi:
        fi.commit([(f"{target}/{event_file_name('reply', at)}",
                    yaml_event("reply", at, dept, final=True, resolution="resolved", body="已答复：基准测试。"))],
                  "one reply", when=int(at.timestamp()),
                  parent=subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                        text=True, check=True).stdout.strip())
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--soft", "main"], check=True)


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own), round(kids)


def cpu_s() -> float:
    """Return the CPU seconds used so far by this process and its waited-for children
    (forked renderers, mkdocs, Pagefind): a figure other load on the machine does not inflate."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def search_bytes(site: Path, query: str) -> int | None:
    """Return the bytes Chromium downloads for one search from the search page
    (page, theme assets and Pagefind), or None without Chromium."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        return None
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    total = {"search": 0}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = b.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/search/")
            page.wait_for_selector(".pagefind-ui__search-input")
            page.wait_for_load_state("networkidle")

            def count(resp):
                if "/pagefind/" in resp.url:
                    try:
                        total["search"] += len(resp.body())
                    except Exception:  # noqa: BLE001 - a cancelled request has no body
                        pass

            page.on("response", count)
            page.fill(".pagefind-ui__search-input", query)
            page.wait_for_selector(".pagefind-ui__result-link", timeout=60000)
            page.wait_for_load_state("networkidle")
            b.close()
    finally:
        server.shutdown()
    return total["search"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--petitions", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "site")
    ap.add_argument("--synthesise-only", action="store_true",
                    help="write the archive into WORK/repo and stop (a later run with --reuse builds it)")
    ap.add_argument("--reuse", action="store_true", help="build WORK/repo written by --synthesise-only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    repo, out = args.work / "repo", args.work / "site"
    # The last run's files are moved aside here and deleted once the figures
    # are taken, not before the cold build: on this VM's ext4 (no journal)
    # the kernel passes over every recently freed inode before it reuses one
    # (find_inode_bit, recently_deleted), so a build started right after
    # deleting a 422,000-file site spent a fifth of its CPU creating files.
    # A cold build on a fresh clone does not follow such a deletion.
    old = args.work.parent / f".{args.work.name}.old-{os.getpid()}"
    atexit.register(shutil.rmtree, old, True)  # when the figures are printed, or the run failed
    if args.reuse:
        now = NOW  # what synthesise returns
        old.mkdir(parents=True)
        # a cold build has no cache, nor the manifest kept beside the site, either
        for stale in (out, manifest_path(out), repo / ".git" / "wenzheng-cache"):
            if stale.exists():
                stale.rename(old / stale.name)
    else:
        if args.work.exists():
            args.work.rename(old)
        args.work.mkdir(parents=True)
        repo.mkdir()
        t0 = time.monotonic()
        now = synthesise(repo, args.petitions)
        print(f"synthesised {args.petitions} petitions in {time.monotonic() - t0:.1f} s", flush=True)
        if args.synthesise_only:
            return

    t0, c0 = time.monotonic(), cpu_s()
    cold = build_site(repo, "HEAD", now, out)
    cold_s, cold_cpu = time.monotonic() - t0, cpu_s() - c0
    files, size = folder_size(out)
    pages = sum(1 for _ in (out / "p").iterdir()) + sum(1 for _ in (out / "en" / "p").iterdir())
    print(f"cold: {cold_s:.1f} s ({cold_cpu:.0f} CPU s, load {os.getloadavg()[0]:.1f}), {cold.written} files, {cold.written / cold_s:.0f} files/s, "
          f"{pages} petition pages, {pages / cold_s:.0f} petition pages/s (whole build), "
          f"phases {cold.seconds}, peak MB (self, children) {peak_mb()}, site {files} files "
          f"{size / 1e6:.0f} MB", flush=True)
    # A reply comes minutes or hours after the last build, not while the kernel
    # is still writing out the 4 GB the cold build just wrote: the one-reply
    # builds start once that is on disk.
    t0 = time.monotonic()
    os.sync()
    print(f"sync after the cold build: {time.monotonic() - t0:.1f} s", flush=True)
    # Three one-reply builds, each on the next newest open petition: this
    # machine's speed drifts, so the middle one is the figure, all three are shown.
    # Each comes ten minutes after the last build, as a reply would: the open
    # cases are evaluated as of a later moment (those overdue are late by more).
    runs = []
    for run in range(3):
        at = now + timedelta(minutes=10 * (run + 1))
        add_reply(repo, at)
        # Each build is a `wenzheng build` of its own, which exits without
        # freeing what the last one made (generator.cli.run): freed here, untimed.
        release()
        t0, c0 = time.monotonic(), cpu_s()
        warm = build_site(repo, "HEAD", at, out)
        runs.append((time.monotonic() - t0, cpu_s() - c0, warm))
        print(f"warm after one reply: {runs[-1][0]:.1f} s ({runs[-1][1]:.0f} CPU s, load {os.getloadavg()[0]:.1f}), "
              f"{warm.written} files rewritten, phases {warm.seconds}, search shards reindexed {warm.search_shards}",
              flush=True)
    warm_s, warm_cpu, warm = sorted(runs, key=lambda run: run[0])[1]
    petition_pages = sorted((out / "p").glob("*.html"))
    sample = petition_pages[len(petition_pages) // 2]
    raw = sample.read_bytes()
    per_page = len(gzip.compress(raw))
    sb = search_bytes(out, "路灯")
    result = {"petitions": args.petitions, "cold_s": round(cold_s, 1), "warm_s": round(warm_s, 1),
              "warm_runs_s": [round(run[0], 1) for run in runs],
              "cold_cpu_s": round(cold_cpu), "warm_cpu_s": round(warm_cpu),
              "files_written_cold": cold.written, "files_per_s": round(cold.written / cold_s),
              "petition_pages": pages, "petition_pages_per_s": round(pages / cold_s),
              "peak_mb_self_children": peak_mb(), "site_files": files, "site_mb": round(size / 1e6),
              "petition_page_bytes": len(raw), "petition_page_gzip_bytes": per_page,
              "search_bytes": sb, "cold_phases": cold.seconds, "warm_phases": warm.seconds}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
