"""Attacks on the bridge's edges, against `wenzheng bridge serve` (real uvicorn
on 127.0.0.1, as deployed): forged forwarded addresses, cross-site posts,
missing security headers, a limiter that forgets on restart, deeply nested JSON.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.bridge.kit import BridgeServer, free_port, seed_archive, solve, write_config

HEADERS = ("content-security-policy", "referrer-policy", "x-content-type-options")


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    from generator.bridge.privacy import new_key_pair
    return new_key_pair()


@pytest.fixture
def bridge(tmp_path, key_pair):
    """Start a bridge (local provider, a real git archive) with a tight limit:
    two submissions per address prefix, then about one an hour."""
    _, recipient = key_pair
    year = datetime.now(timezone(timedelta(hours=8))).year
    remote, _ = seed_archive(tmp_path, year)
    port = free_port()
    cfg = write_config(tmp_path, recipient, **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "bridge-clone"),
        "public_url": f"http://127.0.0.1:{port}", "site_url": "https://archive.example.gov.cn",
        "abuse.burst": 2, "abuse.per_minute": 0.01, "limits.max_body_bytes": 131072})
    servers = []

    def start() -> BridgeServer:
        server = BridgeServer(cfg, port, tmp_path / "bridge.log").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def petition(client: httpx.Client, base: str, title: str = "路灯坏了") -> dict:
    token = client.get(base + "/api/form").json()["form_token"]
    return {"category": "complaint", "title": title, "body": "小区门口的路灯坏了三周。",
            "consent": "yes", "form_token": token, "pow": solve(token)}


def test_forwarded_for_from_an_untrusted_peer_is_ignored(bridge):
    server = bridge()
    with httpx.Client() as client:
        codes = []
        for n in range(4):
            resp = client.post(server.url + "/api/petitions", json=petition(client, server.url),
                               headers={"X-Forwarded-For": f"203.0.{n}.7"})
            codes.append(resp.status_code)
        # trusted_proxies is empty: every post comes from 127.0.0.1, whatever it claims
        assert codes == [201, 201, 429, 429]
        # and the form page (through uvicorn) sees the peer too
        form = petition(client, server.url)
        resp = client.post(server.url + "/submit", data=form, headers={"X-Forwarded-For": "198.51.100.9"})
        assert resp.status_code == 429 and "提交过于频繁" in resp.text


def test_a_cross_origin_post_is_refused(bridge):
    server = bridge()
    with httpx.Client() as client:
        evil = {"Origin": "https://evil.example"}
        resp = client.post(server.url + "/api/petitions", json=petition(client, server.url), headers=evil)
        assert resp.status_code == 403
        [error] = resp.json()["errors"]
        assert error["code"] == "cross_origin"
        assert error["zh"].startswith("此提交来自其他网站") and "another website" in error["en"]
        page = client.post(server.url + "/submit", data=petition(client, server.url), headers=evil,
                           follow_redirects=False)
        assert page.status_code == 403
        assert page.text.index("此提交来自其他网站") < page.text.index("another website")
        referer = client.post(server.url + "/submit", data=petition(client, server.url),
                              headers={"Referer": "https://evil.example/page"})
        assert referer.status_code == 403
        null = client.post(server.url + "/api/petitions", json=petition(client, server.url),
                           headers={"Origin": "null"})
        assert null.status_code == 403
        rate = client.post(server.url + "/api/receipts/" + "a" * 32 + "/rating", json={"rating": "satisfied"},
                           headers=evil)
        assert rate.status_code == 403
        # nothing was accepted; the bridge's own page and the archive site may post
        assert client.get(server.url + "/healthz").json()["queue"]["queued"] == 0
        own = client.post(server.url + "/submit", data=petition(client, server.url),
                          headers={"Origin": server.url}, follow_redirects=False)
        assert own.status_code == 303
        site = client.post(server.url + "/api/petitions", json=petition(client, server.url, "另一件"),
                           headers={"Origin": "https://archive.example.gov.cn"})
        assert site.status_code == 201


def test_security_headers_on_every_response(bridge):
    server = bridge()
    with httpx.Client() as client:
        made = client.post(server.url + "/api/petitions", json=petition(client, server.url))
        token = made.json()["receipt_token"]
        responses = {
            "form": client.get(server.url + "/submit"),
            "receipt": client.get(server.url + f"/receipt/{token}"),
            "receipt api": client.get(server.url + f"/api/receipts/{token}"),
            "form api": client.get(server.url + "/api/form"),
            "missing receipt": client.get(server.url + "/receipt/" + "0" * 32),
            "api error": client.post(server.url + "/api/petitions", content=b"not json"),
            "unknown path": client.get(server.url + "/wp-admin"),
            "wrong method": client.delete(server.url + "/submit"),
            "static": client.get(server.url + "/static/pow.js"),
            "missing static": client.get(server.url + "/static/nothing.js"),
            "redirect": client.get(server.url + "/", follow_redirects=False),
            "health": client.get(server.url + "/healthz"),
        }
    for name, resp in responses.items():
        for header in HEADERS:
            assert header in resp.headers, f"{name} ({resp.status_code}) lacks {header}"
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"], name
        assert resp.headers["x-content-type-options"] == "nosniff", name
        assert resp.headers["referrer-policy"] == "same-origin", name
    assert "script-src 'self'" in responses["form"].headers["content-security-policy"]


def test_the_limit_survives_a_restart(bridge):
    server = bridge()
    with httpx.Client() as client:
        codes = [client.post(server.url + "/api/petitions", json=petition(client, server.url, f"第{n}件")).status_code
                 for n in range(3)]
        assert codes == [201, 201, 429]
        server.stop()
        server = bridge()
        again = client.post(server.url + "/api/petitions", json=petition(client, server.url, "重启之后"))
        assert again.status_code == 429
        assert int(again.headers["retry-after"]) > 60


@pytest.mark.parametrize("path", ["/api/petitions", "/api/receipts/" + "a" * 32 + "/rating"])
def test_deeply_nested_json_is_a_clear_400(bridge, path):
    server = bridge()
    deep = b"[" * 30000 + b"]" * 30000
    deep_object = b'{"a":' * 20000 + b"1" + b"}" * 20000
    with httpx.Client() as client:
        for body in (deep, deep_object):
            resp = client.post(server.url + path, content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 400, resp.text[:200]
            [error] = resp.json()["errors"]
            assert error["code"] == "too_deep" and error["zh"].startswith("请求内容嵌套过深")
        assert client.get(server.url + "/healthz").status_code == 200


def documented_nginx_location(bridge_port: int) -> str:
    """Return the `location / { … }` block of docs/bridge.md's nginx example,
    pointed at ``bridge_port`` (so the documented setup is the tested one)."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "bridge.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```nginx\n(.*?)```", doc, re.S)
    location = re.search(r"    location / \{.*?\n    \}", block, re.S).group(0)
    assert "127.0.0.1:8765" in location
    return location.replace("127.0.0.1:8765", f"127.0.0.1:{bridge_port}")


@pytest.fixture
def behind_nginx(tmp_path, key_pair):
    """The bridge behind real nginx configured as docs/bridge.md says, with the
    proxy trusted and one bucket per address (/32)."""
    import shutil
    import subprocess

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    _, recipient = key_pair
    year = datetime.now(timezone(timedelta(hours=8))).year
    remote, _ = seed_archive(tmp_path, year)
    port, proxy_port = free_port(), free_port()
    cfg = write_config(tmp_path, recipient, **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "bridge-clone"),
        "public_url": f"http://127.0.0.1:{proxy_port}", "abuse.burst": 2, "abuse.per_minute": 0.01,
        "abuse.ipv4_prefix": 32, "abuse.trusted_proxies": ["127.0.0.1/32"]})
    server = BridgeServer(cfg, port, tmp_path / "bridge.log").start()
    conf = tmp_path / "nginx.conf"
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    conf.write_text(f"""
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{proxy_port};
        client_max_body_size 64k;
{documented_nginx_location(port)}
    }}
}}
""", encoding="utf-8")
    with open(tmp_path / "nginx-stderr.log", "wb") as errors:
        proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=errors)
    url = f"http://127.0.0.1:{proxy_port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "nginx-stderr.log").read_text() + (tmp_path / "nginx-error.log").read_text()
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)
    server.stop()


def test_behind_the_documented_nginx_each_citizen_has_their_own_limit(behind_nginx):
    url = behind_nginx

    def client(address: str) -> httpx.Client:  # a citizen at another loopback address
        return httpx.Client(transport=httpx.HTTPTransport(local_address=address))

    with client("127.0.0.2") as a, client("127.0.0.3") as b:
        assert [a.post(url + "/api/petitions", json=petition(a, url, f"甲{n}")).status_code
                for n in range(2)] == [201, 201]
        # nginx replaces a forged header with the real address: the limit still bites
        forged = a.post(url + "/api/petitions", json=petition(a, url, "甲2"),
                        headers={"X-Forwarded-For": "203.0.113.5"})
        assert forged.status_code == 429
        # another citizen behind the same proxy is not limited by the first
        other = b.post(url + "/api/petitions", json=petition(b, url, "乙"))
        assert other.status_code == 201
        assert "frame-ancestors 'none'" in other.headers["content-security-policy"]


def test_the_forms_own_script_still_runs_under_the_policy(bridge, tmp_path):
    """The policy must not break the form: real chromium loads /submit and the
    proof-of-work script (same origin, allowed by script-src 'self') completes."""
    import subprocess

    server = bridge()
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
                           server.url + "/submit"], capture_output=True, text=True, timeout=120)
    assert "安全校验完成" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
