"""Benchmark the bridge: accepted submissions per second with p50/p99 latency, and
the publishing rate per provider with batching on and off.

Everything runs on 127.0.0.1, bounded in time and count, and stops by itself.

    python bench/bench_bridge.py --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from generator.bridge.abuse import issue_form_token, solve_pow  # noqa: E402
from generator.bridge.privacy import new_key_pair  # noqa: E402
from tests.bridge.kit import BridgeServer, free_port, seed_archive, write_config  # noqa: E402

SECRET = "bench-secret-" + "b" * 40
BITS = 4


def accept_bench(seconds: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        remote, _ = seed_archive(tmp, time.localtime().tm_year)
        port = free_port()
        cfg = write_config(tmp, new_key_pair()[1], **{
            "secret": SECRET, "forge.local.remote": str(remote), "forge.local.repo": str(tmp / "clone"),
            "abuse.burst": 10**9, "abuse.pow_bits": BITS, "abuse.min_fill_seconds": 0.0,
            "sqlite_synchronous": "full", "forge.batch.max_items": 200, "forge.batch.max_wait_seconds": 5.0,
            "forge.poll_seconds": 30.0})
        server = BridgeServer(cfg, port, tmp / "bridge.log").start()
        try:
            latencies: list[float] = []
            errors = [0]
            deadline = time.monotonic() + seconds

            async def citizen(n: int) -> None:
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                    i = 0
                    while time.monotonic() < deadline:
                        token = issue_form_token(SECRET.encode(), time.time(), BITS)
                        form = {"category": "complaint", "title": f"噪音扰民 {n}-{i}",
                                "body": "夜间施工噪音，电话 13812345678，请处理。" * 5, "district": "东湖区",
                                "contact": "13900001111", "consent": "yes", "form_token": token,
                                "pow": solve_pow(token, BITS)}
                        start = time.perf_counter()
                        resp = await client.post("/api/petitions", json=form)
                        took = time.perf_counter() - start
                        if resp.status_code == 201:
                            latencies.append(took)
                        else:
                            errors[0] += 1
                        i += 1

            async def run() -> None:
                await asyncio.gather(*(citizen(n) for n in range(concurrency)))

            t0 = time.monotonic()
            asyncio.run(run())
            elapsed = time.monotonic() - t0
        finally:
            server.stop()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"accept: {len(latencies)} accepted in {elapsed:.1f} s = {len(latencies) / elapsed:.0f}/s "
          f"(concurrency {concurrency}, sqlite synchronous=full, worker publishing alongside); "
          f"p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms; errors {errors[0]}")


def publish_bench(kind: str, items: int, batching: bool) -> None:
    """Fill an outbox with ``items`` petitions, then time the worker publishing them."""
    from generator.bridge.app import Bridge
    from generator.bridge.config import load_config
    from generator.bridge.outbox import Outbox
    from generator.bridge.providers import make_provider
    from generator.bridge.worker import Worker
    from tests.bridge.fakeforge import FakeForge, ForgeServer

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        overrides = {"secret": SECRET, "abuse.burst": 10**9, "forge.min_interval_seconds": 0.0, "forge.batch.enabled": batching,
                     "forge.batch.max_items": 50, "forge.batch.max_wait_seconds": 0.0, "forge.cleanup_seconds": 0,
                     "forge.poll_seconds": 3600.0}
        forge = server = None
        if kind == "local":
            remote, _ = seed_archive(tmp, 2026)
            overrides.update({"forge.local.remote": str(remote), "forge.local.repo": str(tmp / "clone")})
        else:
            forge = FakeForge(tmp, kind)
            forge.seed({"petitions/2026/01/2026-000001/petition.yaml": b"id: 2026-000001\n"})
            server = ForgeServer(forge).__enter__()
            overrides.update({"forge.provider": kind, "forge.api_url": server.api_url, "forge.owner": "city",
                              "forge.repo": "city/archive" if kind == "gitlab" else "archive", "forge.token": "t"})
        cfg = load_config(write_config(tmp, new_key_pair()[1], **overrides), {})
        try:
            provider = make_provider(cfg)
            clock = time.time
            bridge = Bridge(cfg, provider, clock)
            bridge.sync_floor()
            for i in range(items):
                token = issue_form_token(SECRET.encode(), clock() - 10, BITS)
                outcome = bridge.submit({"category": "help", "title": f"求助 {i}", "body": "路灯坏了。",
                                         "consent": "yes", "form_token": token, "pow": solve_pow(token, BITS)},
                                        f"10.{i // 65536}.{i // 256 % 256}.0/24")
                assert outcome.status == 201, outcome
            bridge.outbox.close()
            worker = Worker(cfg, provider, clock)
            worker.outbox = Outbox(cfg.database, cfg.sqlite_synchronous)
            t0 = time.monotonic()
            while worker.outbox.counts()["queued"] or worker.outbox.batches("pending"):
                worker.step(clock())
            elapsed = time.monotonic() - t0
            sent = getattr(getattr(provider, "http", None), "requests_sent", None)
            worker.outbox.close()
        finally:
            if server:
                server.__exit__(None, None, None)
        req = f", {sent} forge requests ({sent / items:.2f} per submission)" if sent is not None else ""
        print(f"publish {kind:6} batching {'on ' if batching else 'off'}: {items} submissions in {elapsed:.1f} s "
              f"= {items / elapsed:.1f}/s, {worker.published_batches} pull requests{req}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the accept benchmark")
    parser.add_argument("--concurrency", type=int, default=8, help="simultaneous citizens")
    parser.add_argument("--items", type=int, default=200, help="submissions per publishing run")
    parser.add_argument("--skip-publish", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    accept_bench(args.seconds, args.concurrency)
    if not args.skip_publish:
        for kind in ("local", "github", "gitlab", "gitea"):
            for batching in (True, False):
                publish_bench(kind, args.items if batching else max(10, args.items // 5), batching)


if __name__ == "__main__":
    main()
