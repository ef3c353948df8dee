"""The site in real Chromium: navigation, search in Chinese, language switch, a
phone-sized viewport, axe-core on every page type, the deadline calculator
against the Python clocks. Screenshots go to tests/artefacts/ (ignored by git)."""

from __future__ import annotations

import functools
import http.server
import threading
from datetime import datetime
from pathlib import Path

import pytest

from generator.build import build_site
from generator.rules import compute_deadline
from generator.check import check_archive
from site_util import NOW, REPLY_PHRASE, add_reply, small_archive

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = Path(__file__).parent / "artefacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists() or not AXE.exists():
        pytest.fail("run `make test` first: it installs Debian's chromium and axe-core from npm")
    base = tmp_path_factory.mktemp("browser")
    repo = small_archive(base / "repo")
    add_reply(repo)
    out = base / "site"
    with pytest.MonkeyPatch.context() as mp:
        # Index the month in parts, as a busy recent month is: the search merges them.
        mp.setattr("generator.render.search.SPLIT_ABOVE", 1)
        build_site(repo, "HEAD", datetime.fromisoformat(NOW), out)
    assert sorted(p.name for p in (out / "pagefind").iterdir() if p.is_dir()) == ["2026-11-2", "2026-11-4"]
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield repo, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result if v["impact"] in ("serious", "critical")]


def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_follow_home_department_petition_supervision_report(served, browser):
    _, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/")
    assert "数据截至" in page.content()
    shot(page, "home-desktop")
    page.click("a[href='/d/transport/'] >> nth=0")
    page.wait_for_url("**/d/transport/")
    assert "考核指标" in page.content()
    shot(page, "department-desktop")
    page.click("a[href='/p/2026-000003.html'] >> nth=0")
    page.wait_for_url("**/p/2026-000003.html")
    assert "公交站台遮雨棚漏水" in page.content()
    shot(page, "petition-desktop")
    page.goto(url + "/supervision/")
    text = page.inner_text("article")
    assert "2026-000003" in text, text
    shot(page, "supervision-desktop")
    page.goto(url + "/reports/")
    page.click("a[href='/r/month/2026-11/']")
    page.wait_for_url("**/r/month/2026-11/")
    assert "月报" in page.content()
    shot(page, "report-desktop")
    page.close()


def test_search_a_chinese_phrase_from_a_reply_lands_on_its_petition(served, browser):
    _, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/search/")
    page.wait_for_selector(".pagefind-ui__search-input")
    page.fill(".pagefind-ui__search-input", "井盖")
    page.wait_for_selector(".pagefind-ui__result-link")
    shot(page, "search-desktop")
    page.click(".pagefind-ui__result-link >> nth=0")
    page.wait_for_url("**/p/2026-000002.html")
    assert REPLY_PHRASE in page.content()
    page.close()


def search(page, url: str, query: str) -> dict:
    """Search ``query`` on the search page at ``url``; return what the reader
    sees of the filters and the first results, the filters' panel opened."""
    page.goto(url)
    page.wait_for_selector(".pagefind-ui__search-input")
    page.fill(".pagefind-ui__search-input", query)
    page.wait_for_selector(".pagefind-ui__result-link")
    page.wait_for_selector(".pagefind-ui__filter-name")
    page.click(".pagefind-ui__filter-name >> nth=2")  # the statuses
    texts = "els => els.map(e => e.textContent.trim())"
    return {"filters": page.eval_on_selector_all(".pagefind-ui__filter-name", texts),
            "values": page.eval_on_selector_all(".pagefind-ui__filter-label", texts),
            "tags": page.eval_on_selector_all(".pagefind-ui__result-tag", texts),
            "links": page.eval_on_selector_all(".pagefind-ui__result-link",
                                               "els => els.map(e => e.getAttribute('href'))")}


def test_search_speaks_the_page_language_and_leads_to_the_page_in_it(served, browser):
    _, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    zh = search(page, url + "/search/", "井盖")
    assert zh["filters"] == ["类别", "承办部门", "状态", "年份"]
    assert any(v.startswith("已逾期") for v in zh["values"]) and zh["tags"][0].startswith("受理时间: 2026-11-10")
    assert zh["links"][0] == "/p/2026-000002.html"
    # The filters are Pagefind's own disclosure widgets, not the theme's note boxes.
    panel = "getComputedStyle(document.querySelector('.pagefind-ui__filter-panel')).borderTopStyle"
    assert page.evaluate(panel) == "none"
    assert page.evaluate("getComputedStyle(document.querySelector('.pagefind-ui__filter-name'), '::after').maskImage") \
        == "none"
    en = search(page, url + "/en/search/", "井盖")
    assert en["filters"] == ["Category", "Department", "Status", "Year"]
    assert any(v.startswith("Overdue") for v in en["values"]) and not any(v.startswith("已逾期") for v in en["values"])
    assert en["tags"][0].startswith("Received: 2026-11-10")
    shot(page, "search-english")
    page.click(".pagefind-ui__result-link >> nth=0")
    page.wait_for_url("**/en/p/2026-000002.html")
    assert REPLY_PHRASE in page.content() and page.evaluate("document.documentElement.lang").startswith("en")
    page.close()


def test_search_results_link_within_a_site_published_under_a_path(tmp_path_factory, browser):
    base = tmp_path_factory.mktemp("under-a-path")
    repo = small_archive(base / "repo")
    add_reply(repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("generator.render.search.SPLIT_ABOVE", 1)  # the reply's shard is merged into the first
        build_site(repo, "HEAD", datetime.fromisoformat(NOW), base / "www" / "wenzheng", base_url="/wenzheng/")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(base / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        page = browser.new_page()
        for home in ("/wenzheng/", "/wenzheng/en/"):
            found = search(page, url + home + "search/", "井盖")
            assert found["links"][0] == home + "p/2026-000002.html"
            page.click(".pagefind-ui__result-link >> nth=0")
            page.wait_for_url("**" + home + "p/2026-000002.html")
            assert REPLY_PHRASE in page.content()
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_language_switch_keeps_the_page(served, browser):
    _, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for path in ("/p/2026-000002.html", "/supervision/"):
        page.goto(url + path)
        english = page.locator("a.md-select__link[hreflang='en']")
        assert english.get_attribute("href") == "/en" + path
        page.goto(url + english.get_attribute("href"))
        assert page.evaluate("document.documentElement.lang").startswith("en")
        back = page.locator("a.md-select__link[hreflang='zh']").get_attribute("href")
        assert back == path
    page.goto(url + "/en/p/2026-000002.html")
    assert "Overdue" in page.content() or "Closed" in page.content() or "Open" in page.content()
    shot(page, "petition-english")
    page.close()


PAGE_TYPES = {"home": "/", "petition": "/p/2026-000002.html", "listing": "/l/all/", "department": "/d/transport/",
              "ranking": "/ranking/", "supervision": "/supervision/", "report": "/r/month/2026-11/",
              "rules": "/rules/", "search": "/search/", "open-data": "/open-data/", "english": "/en/p/2026-000001.html"}


@pytest.mark.parametrize("name", sorted(PAGE_TYPES))
def test_axe_and_phone_viewport(served, browser, name):
    _, url = served
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page.goto(url + PAGE_TYPES[name])
    page.wait_for_load_state("networkidle")
    # The page itself must not scroll sideways on a phone; wide tables scroll in their box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    # Wenzheng's stylesheet (its own file) is in effect: the header has the site's dark red.
    assert page.evaluate("getComputedStyle(document.querySelector('.md-header')).backgroundColor") == "rgb(155, 28, 28)"
    shot(page, f"{name}-phone")
    assert axe_violations(page) == []
    page.close()


def test_calculator_matches_python(served, browser):
    repo, url = served
    rules = check_archive(repo).rules
    page = browser.new_page()
    page.goto(url + "/rules/")
    cases = [("2025-09-30T15:00", "complaint", "web"), ("2025-10-07T23:00", "help", "phone"),
             ("2026-02-13T16:45", "consultation", "app"), ("2024-12-31T08:00", "report", "letter")]
    for start, category, channel in cases:
        js = page.evaluate("([s, c, ch]) => window.wzDeadline(s, c, ch)", [start, category, channel])
        received = datetime.fromisoformat(start + ":00+08:00")
        py = compute_deadline(rules, received, category, channel)
        assert len(js) == len(py)
        for got, want in zip(js, py):
            due = want.due_at.astimezone(rules.tz)
            text = due.strftime("%Y-%m-%d %H:%M")
            if (due.hour, due.minute) == (0, 0) and want.unit in ("working_days", "days"):
                from datetime import timedelta
                text = (due - timedelta(days=1)).strftime("%Y-%m-%d") + " 24:00"
            assert got["due"] == text, (start, got["stage"])
    # The DESIGN's fact: 5 working days after 2025-09-30 15:00 end on 2025-10-14.
    first = page.evaluate("() => window.wzDeadline('2025-09-30T15:00', 'complaint', 'web')")
    assert any(r["due"] == "2025-10-14 24:00" for r in first)
    page.close()
