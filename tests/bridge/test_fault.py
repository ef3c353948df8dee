"""Fault test: 2,000 submissions while the bridge is SIGKILLed three times and the
forge answers 503 and 429 for stretches; then a privacy scan of everything in git."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from .fakeforge import FakeForge, ForgeServer
from .kit import BridgeServer, free_port, solve, wait_for, write_config
from .specs import github_validator

N = int(__import__("os").environ.get("BRIDGE_FAULT_N", "2000"))
KILL_AT = (N * 9 // 40, N // 2, N * 31 // 40)

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_number(rng: random.Random) -> str:
    """A resident ID number with a correct check character (computed here, separately)."""
    body = f"{rng.choice(['110105', '320102', '440305'])}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}" \
           f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]
    return body + check


def bank_card(rng: random.Random) -> str:
    digits = [6, 2] + [rng.randint(0, 9) for _ in range(15)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit will sit to the right
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def personal_data(i: int, rng: random.Random) -> dict[str, str]:
    return {"phone": f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}",
            "phone2": f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}",
            "email": f"citizen{i}q@mail{i % 7}.example.cn",
            "id": id_number(rng), "card": bank_card(rng)}


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


def form_for(i: int, pd: dict[str, str]) -> dict[str, str]:
    p = pd["phone"]
    phone_styles = [p, f"{p[:3]}-{p[3:7]}-{p[7:]}", f"+86 {p[:3]} {p[3:7]} {p[7:]}", full_width(p)]
    body = (f"第{i}号诉求：楼下餐馆油烟扰民。请联系我 {phone_styles[i % 4]}，或发邮件到 {pd['email']}。"
            f"身份证号 {pd['id']}，退款请打到卡 {pd['card']}。")
    return {"category": "complaint", "title": f"油烟扰民 {i}" + (f" 电话{pd['phone2']}" if i % 5 == 0 else ""),
            "body": body, "district": "东湖区", "consent": "yes",
            "contact": f"王{i} {pd['phone2']} {pd['email']}"}


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory, key_pair):
    tmp = tmp_path_factory.mktemp("fault")
    _, recipient = key_pair
    forge = FakeForge(tmp, "github", github_validator())
    forge.seed({"petitions/2026/01/2026-000010/petition.yaml": b"id: 2026-000010\n"})
    rng = random.Random(5)
    data = [personal_data(i, rng) for i in range(N)]
    receipts: dict[int, str] = {}
    with ForgeServer(forge) as fs:
        port = free_port()
        cfg = write_config(tmp, recipient, **{
            "forge.provider": "github", "forge.api_url": fs.api_url, "forge.owner": "city",
            "forge.repo": "archive", "forge.token": "t", "forge.batch.max_items": 200,
            "forge.batch.max_wait_seconds": 1.0, "forge.poll_seconds": 5.0, "forge.max_backoff_seconds": 2.0,
            "abuse.burst": 100000, "abuse.pow_bits": 4, "abuse.min_fill_seconds": 0.0})
        server = BridgeServer(cfg, port, tmp / "bridge.log").start()
        lock = threading.Lock()
        sent = [0]
        kills = [0]

        def submit(i: int) -> None:
            with httpx.Client(timeout=10) as client:
                while True:  # a citizen whose post failed presses the button again (same form)
                    try:
                        token = client.get(server.url + "/api/form").json()["form_token"]
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                form = {**form_for(i, data[i]), "form_token": token, "pow": solve(token)}
                for _ in range(300):
                    try:
                        resp = client.post(server.url + "/api/petitions", json=form)
                        if resp.status_code in (200, 201):
                            with lock:
                                receipts[i] = resp.json()["petition_id"]
                                sent[0] += 1
                            return
                        raise AssertionError(resp.text)
                    except httpx.HTTPError:
                        time.sleep(0.1)
                raise AssertionError(f"submission {i} never got a receipt")

        def chaos() -> None:
            """Kill the bridge three times; make the forge fail in stretches."""
            for at in KILL_AT:
                while sent[0] < at:
                    time.sleep(0.01)
                k0 = time.monotonic()
                server.kill()
                kills[0] += 1
                forge.faults.mode = "503" if kills[0] != 2 else "429"
                server.start()
                print(f"restart took {time.monotonic() - k0:.1f} s")
                time.sleep(1.0)
                forge.faults.mode = None
            time.sleep(1.0)
            forge.faults.mode = "503"
            time.sleep(1.5)
            forge.faults.mode = None

        t0 = time.monotonic()
        chaos_thread = threading.Thread(target=chaos)
        chaos_thread.start()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(submit, range(N)))
        t1 = time.monotonic()
        chaos_thread.join()
        t2 = time.monotonic()
        db = tmp / "bridge.sqlite3"

        def all_opened() -> bool:
            conn = sqlite3.connect(db)
            try:
                return conn.execute("SELECT count(*) FROM items WHERE state != 'opened'").fetchone()[0] == 0
            finally:
                conn.close()

        wait_for(all_opened, timeout=90, interval=0.5)
        print(f"\nfault run: submitted in {t1 - t0:.1f} s, chaos done {t2 - t0:.1f} s, "
              f"all published {time.monotonic() - t0:.1f} s, forge requests {len(forge.requests)}")
        server.stop()
    return {"forge": forge, "receipts": receipts, "data": data, "kills": kills[0], "log": tmp / "bridge.log"}


@pytest.mark.slow
def test_every_submission_is_in_exactly_one_pull_request(fault_run):
    forge, receipts = fault_run["forge"], fault_run["receipts"]
    assert fault_run["kills"] == 3 and forge.faults.count > 0
    assert len(receipts) == N
    ids = list(receipts.values())
    assert len(set(ids)) == N  # one id per submission, none given twice
    assert sorted(ids) == [f"2026-{n:06d}" for n in range(11, 11 + N)] or \
        all(i.endswith(tuple(f"{n:06d}" for n in range(11, 11 + N))) for i in ids)
    store = forge.store
    seen: dict[str, int] = {}
    branches = [pr.head for pr in forge.pulls]
    assert len(branches) == len(set(branches))
    for pr in forge.pulls:
        head = store.ref(pr.head)
        assert head, f"pull request {pr.number} has no branch"
        assert store.git("rev-list", "--count", f"main..{head}").strip() == "1"
        for path in store.git("diff", "--name-only", "main", head).split():
            record = yaml.safe_load(store.git("show", f"{head}:{path}"))
            seen[record["id"]] = seen.get(record["id"], 0) + 1
    assert sorted(seen) == sorted(ids)
    assert set(seen.values()) == {1}
    # no branch without its pull request
    assert sorted(b for b in store.branches() if b.startswith("bridge/")) == sorted(branches)
    assert forge.spec_problems == []


@pytest.mark.slow
def test_no_personal_data_anywhere_in_git_or_pull_requests(fault_run):
    forge, data = fault_run["forge"], fault_run["data"]
    store = forge.store
    blobs = store.git("cat-file", "--batch-all-objects", "--batch")  # every object: blobs, trees, commits
    refs = store.git("for-each-ref")
    log = store.git("log", "--all", "--format=%an %ae %cn %ce %s %b")
    prs = "\n".join(f"{p.title}\n{p.body}\n{' '.join(p.labels)}\n{p.head}" for p in forge.pulls)
    haystack = "\n".join((blobs, refs, log, prs))
    compact = haystack.replace(" ", "").replace("-", "")
    assert "[手机号已隐去]" in haystack and "[身份证号已隐去]" in haystack
    assert "[邮箱已隐去]" in haystack and "[银行卡号已隐去]" in haystack
    leaks = []
    for pd in data:
        for kind, value in pd.items():
            if value in haystack or value in compact or full_width(value) in haystack:
                leaks.append((kind, value))
    assert leaks == []
    assert all("needs-moderation" in p.labels for p in forge.pulls)
    # the bridge's own logs carry no personal data either
    logged = fault_run["log"].read_text(encoding="utf-8", errors="replace")
    assert not [v for pd in data for v in pd.values() if v in logged]
