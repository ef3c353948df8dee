"""The bridge's HTTP endpoints and each abuse protection, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn

from generator.bridge.abuse import solve_pow
from generator.bridge.app import create_app
from generator.bridge.config import load_config
from generator.bridge.providers.local import LocalProvider

from .kit import free_port, seed_archive, write_config


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bridge(tmp_path, key_pair):
    """A bridge app (no worker) on 127.0.0.1 whose clock the test moves."""
    remote, _ = seed_archive(tmp_path, 2026, seq=99)
    path = write_config(tmp_path, key_pair[1], **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "clone"),
        "abuse.pow_bits": 8, "abuse.min_fill_seconds": 3.0, "abuse.burst": 3, "abuse.per_minute": 1.0,
        "abuse.nojs_per_hour": 1.0, "abuse.trusted_proxies": ["127.0.0.1/32"], "limits.max_body_bytes": 4096})
    cfg = load_config(path, {})
    clock = Clock(datetime(2026, 3, 5, 9, 30, tzinfo=timezone(timedelta(hours=8))).timestamp())
    app = create_app(cfg, LocalProvider(cfg.forge_local_repo, cfg.forge_local_remote), clock, run_worker=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    yield client, clock, app
    client.close()
    server.should_exit = True
    thread.join(10)


def fresh(client, clock, ip="198.51.100.7", pow_=True, **fields):
    token = client.get("/api/form").json()["form_token"]
    clock.now += 5
    form = {"category": "help", "title": "路灯坏了", "body": "东湖路的路灯坏了。", "consent": "yes",
            "form_token": token, **fields}
    if pow_:
        form["pow"] = solve_pow(token, 8)
    return form, {"X-Forwarded-For": ip}


def test_json_submission_and_idempotent_replay(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock)
    first = client.post("/api/petitions", json=form, headers=headers)
    assert first.status_code == 201
    assert first.json()["petition_id"] == "2026-000100"  # the seed's highest is 99
    again = client.post("/api/petitions", json=form, headers=headers)
    assert again.status_code == 200 and again.json()["petition_id"] == "2026-000100"
    assert again.json()["receipt_token"] == first.json()["receipt_token"]
    receipt = client.get(f"/api/receipts/{first.json()['receipt_token']}").json()
    assert receipt["status"] == "queued" and receipt["received_at"] == "2026-03-05T09:30:05+08:00"
    assert client.get("/api/receipts/" + "0" * 32).status_code == 404


def test_body_limit(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock, body="长" * 3000)  # 9,000 bytes in UTF-8
    resp = client.post("/api/petitions", json=form, headers=headers)
    assert resp.status_code == 413 and resp.json()["errors"][0]["code"] == "too_large"
    html = client.post("/submit", data=form, headers=headers)
    assert html.status_code == 413 and "提交内容过长" in html.text


def test_field_errors_in_both_languages_and_text_kept(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock, title="", category="nonsense")
    resp = client.post("/submit", data=form, headers=headers)
    assert resp.status_code == 400
    assert "请填写标题" in resp.text and "Please fill in the title" in resp.text
    assert "请选择诉求类型" in resp.text
    assert "东湖路的路灯坏了。" in resp.text  # what the citizen wrote is still in the form
    assert 'aria-invalid="true"' in resp.text


def test_honeypot(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock, website="http://cheap-pills.example")
    resp = client.post("/api/petitions", json=form, headers=headers)
    assert resp.status_code == 400 and resp.json()["errors"][0]["code"] == "honeypot"


def test_minimum_fill_time(bridge):
    client, clock, _ = bridge
    token = client.get("/api/form").json()["form_token"]
    clock.now += 1  # faster than the 3 s a person needs
    form = {"category": "help", "title": "t", "body": "b", "consent": "yes", "form_token": token,
            "pow": solve_pow(token, 8)}
    resp = client.post("/api/petitions", json=form, headers={"X-Forwarded-For": "198.51.100.8"})
    assert resp.status_code == 400 and resp.json()["errors"][0]["code"] == "too_fast"


def test_bad_proof_of_work(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock)
    form["pow"] = next(str(n) for n in range(10**6) if str(n) != form["pow"]
                       and not _solves(form["form_token"], str(n)))
    resp = client.post("/api/petitions", json=form, headers=headers)
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "pow"


def _solves(token, nonce):
    import hashlib
    return hashlib.sha256(f"{token}:{nonce}".encode()).digest()[0] == 0


def test_without_javascript_a_stricter_limit_and_moderation(bridge):
    client, clock, app = bridge
    form, headers = fresh(client, clock, pow_=False, ip="203.0.113.50")
    first = client.post("/api/petitions", json=form, headers=headers)
    assert first.status_code == 201
    item = app.state.bridge.outbox.find_by_idem(form["form_token"].split(".")[1])
    assert "no_pow" in item.flags
    form, headers = fresh(client, clock, pow_=False, ip="203.0.113.51")  # same /24
    second = client.post("/api/petitions", json=form, headers=headers)
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 60


def test_rate_limit_per_prefix_with_retry_after_keeps_text(bridge):
    client, clock, _ = bridge
    for i in range(3):  # the burst; each post comes 5 s after the last
        form, headers = fresh(client, clock, ip=f"192.0.2.{i + 1}")
        assert client.post("/api/petitions", json=form, headers=headers).status_code == 201
    form, headers = fresh(client, clock, ip="192.0.2.200", body="这段文字不能丢。")
    resp = client.post("/submit", data=form, headers=headers)
    assert resp.status_code == 429
    # 3 - 3 taken + 15 s * (1/60 per s) = 0.25 tokens; one token is 0.75 * 60 = 45 s away; rounded up 46
    assert int(resp.headers["Retry-After"]) == 46
    assert "这段文字不能丢。" in resp.text
    other, headers = fresh(client, clock, ip="192.0.3.1")  # another /24 is not limited
    assert client.post("/api/petitions", json=other, headers=headers).status_code == 201


def test_forwarded_for_from_untrusted_peer_is_ignored(tmp_path, key_pair):
    """Without the proxy trusted, X-Forwarded-For cannot buy fresh buckets."""
    from generator.bridge.app import Bridge
    remote, _ = seed_archive(tmp_path, 2026)
    cfg = load_config(write_config(tmp_path, key_pair[1], **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "c")}), {})
    b = Bridge(cfg, LocalProvider(cfg.forge_local_repo, cfg.forge_local_remote), lambda: 0.0)
    assert b.prefix("127.0.0.1", "198.51.100.1") == "127.0.0.0/24"
    b.outbox.close()


def test_unknown_fields_and_non_json(bridge):
    client, clock, _ = bridge
    form, headers = fresh(client, clock, admin="1")
    assert client.post("/api/petitions", json=form, headers=headers).json()["errors"][0]["code"] == "unknown_field"
    bad = client.post("/api/petitions", content=b"\xff\xfe", headers=headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "not_json"


def test_submit_page_and_health_and_metrics(bridge):
    client, clock, _ = bridge
    page = client.get("/submit").text
    assert page.index("提交诉求") < page.index("Submit a petition")  # Chinese first
    assert 'name="website"' in page and "<noscript>" in page and "/static/pow.js" in page
    assert client.get("/static/pow.js").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"
    form, headers = fresh(client, clock)
    client.post("/api/petitions", json=form, headers=headers)
    metrics = client.get("/metrics").text
    assert "wenzheng_bridge_accepted_total 1" in metrics
    assert 'wenzheng_bridge_items{state="queued"} 1' in metrics
