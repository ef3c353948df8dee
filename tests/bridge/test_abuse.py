"""Abuse defences, each tested on its own, and a fuzz pass over the form parser."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.bridge import abuse
from generator.bridge.abuse import FieldLimits, RateLimiter, parse_petition_form

SECRET = b"s" * 40
GOOD = {"category": "help", "title": "路灯坏了", "body": "东湖路的路灯坏了。", "consent": "yes",
        "form_token": "t"}


def errors_of(raw):
    form, errors = parse_petition_form(raw, FieldLimits())
    return form, {e.field: e.code for e in errors}


def test_good_form_parses():
    form, errors = errors_of(GOOD)
    assert errors == {} and form.title == "路灯坏了"


def test_every_problem_at_once_with_both_languages():
    form, errors = parse_petition_form({"title": "", "body": "x" * 5001, "website": "http://spam"},
                                       FieldLimits())
    assert form is None
    codes = {e.field: e.code for e in errors}
    assert codes == {"website": "honeypot", "category": "required", "title": "required", "body": "too_long",
                     "consent": "required", "form_token": "required"}
    assert all(e.zh and e.en for e in errors)
    assert any("5000" in e.zh and "5001" in e.en for e in errors)


def test_unknown_and_repeated_fields_are_refused():
    _, errors = errors_of({**GOOD, "is_admin": "1", "title": ["a", "b"]})
    assert errors == {"is_admin": "unknown_field", "title": "repeated"}


def test_non_text_json_values_are_refused():
    _, errors = errors_of({**GOOD, "title": {"$gt": ""}, "body": 5})
    assert errors == {"title": "not_text", "body": "not_text"}


def test_unicode_normalised_and_bidi_and_controls_removed():
    raw = {**GOOD, "title": "路灯\u202e坏了\u200b\x07", "body": "第一行\r\n第二行\x00\u2066x\u2069",
           "district": "东湖区\n"}
    form, errors = errors_of(raw)
    assert errors == {}
    assert form.title == "路灯坏了"
    assert form.body == "第一行\n第二行x"
    assert form.district == "东湖区"
    # NFC: a decomposed e + combining acute becomes one character
    form, _ = errors_of({**GOOD, "title": "cafe\u0301"})
    assert form.title == "caf\u00e9"


def test_limits_count_characters_after_normalisation():
    _, errors = errors_of({**GOOD, "title": "字" * 100})
    assert errors == {}
    _, errors = errors_of({**GOOD, "title": "字" * 101})
    assert errors == {"title": "too_long"}


def test_districts_list_is_enforced_when_configured():
    _, errors = parse_petition_form({**GOOD, "district": "火星区"}, FieldLimits(), ("东湖区",))
    assert [e.code for e in errors] == ["invalid"]


# -- form tokens and proof of work ---------------------------------------------

def test_token_signature_age_and_fill_time():
    token = abuse.issue_form_token(SECRET, 1000.0, 8)
    nonce = abuse.solve_pow(token, 8)
    ok = abuse.check_form_token(SECRET, token, nonce, 1005.0, 3.0, 3600.0)
    assert ok.errors == () and ok.proof_of_work and ok.token.issued == 1000
    assert abuse.check_form_token(SECRET, token, nonce, 1001.0, 3.0, 3600.0).errors[0].code == "too_fast"
    assert abuse.check_form_token(SECRET, token, nonce, 5000.0, 3.0, 3600.0).errors[0].code == "invalid"
    assert abuse.check_form_token(b"x" * 40, token, nonce, 1005.0, 3.0, 3600.0).errors[0].code == "invalid"
    forged = token.replace(".8.", ".0.")  # lowering the difficulty breaks the signature
    assert abuse.check_form_token(SECRET, forged, "0", 1005.0, 3.0, 3600.0).errors[0].code == "invalid"


def test_pow_is_checked_independently():
    token = abuse.issue_form_token(SECRET, 1000.0, 12)
    nonce = abuse.solve_pow(token, 12)
    digest = hashlib.sha256(f"{token}:{nonce}".encode()).digest()
    assert digest[0] == 0 and digest[1] < 16  # 12 leading zero bits, read off the bytes
    bad = next(str(n) for n in range(1000) if hashlib.sha256(f"{token}:{n}".encode()).digest()[0] != 0)
    check = abuse.check_form_token(SECRET, token, bad, 1005.0, 0, 3600)
    assert check.errors[0].code == "invalid" and check.errors[0].field == "pow"
    assert abuse.check_form_token(SECRET, token, None, 1005.0, 0, 3600).proof_of_work is False


def test_browser_solver_agrees_with_python(tmp_path):
    """The self-hosted JavaScript SHA-256 gives the same first word as hashlib."""
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    js = Path(abuse.__file__).parent / "static" / "pow.js"
    inputs = ["", "abc", "v1.k.1.16.sig:123", "x" * 55, "y" * 56, "z" * 119]
    script = ("global.window={};global.document={querySelectorAll:()=>[]};require(%r);"
              "console.log(JSON.stringify(%r.map(s=>window.wenzhengPowFirstWord(s))))") % (str(js), inputs)
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout
    import json
    assert json.loads(out) == [int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "big") for s in inputs]


# -- addresses and rate limits -------------------------------------------------

def test_forwarded_for_only_from_trusted_proxies():
    import ipaddress
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    assert abuse.client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"
    assert abuse.client_address("10.0.0.2", "198.51.100.1, 10.0.0.5", proxies) == "198.51.100.1"
    # the client cannot put a fake address at the left of the chain and be believed
    assert abuse.client_address("10.0.0.2", "1.2.3.4, 198.51.100.1", proxies) == "198.51.100.1"
    assert abuse.client_address("10.0.0.2", "not-an-ip", proxies) == "10.0.0.2"


def test_prefixes():
    assert abuse.address_prefix("203.0.113.9", 24, 56) == "203.0.113.0/24"
    assert abuse.address_prefix("2001:db8:1:2ff:3::1", 24, 56) == "2001:db8:1:200::/56"


def test_rate_limiter_burst_refill_and_retry_after():
    limiter = RateLimiter(per_minute=6, burst=2)
    assert limiter.take("a", 0.0) == 0 and limiter.take("a", 0.0) == 0
    wait = limiter.take("a", 0.0)
    assert wait == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert limiter.take("b", 0.0) == 0  # another prefix has its own bucket
    assert limiter.take("a", 10.0) == 0


def test_rate_limiter_memory_is_bounded():
    limiter = RateLimiter(per_minute=60, burst=1, max_keys=100)
    for i in range(1000):
        limiter.take(f"k{i}", float(i))
    assert len(limiter._buckets) <= 100


# -- fuzz ------------------------------------------------------------------------

field_names = st.sampled_from(list(abuse.PETITION_FIELDS) + ["x", "__proto__", ""])
values = st.one_of(st.text(), st.lists(st.text(), max_size=3), st.integers(), st.none(), st.booleans(),
                   st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, values, max_size=12))
def test_fuzz_form_parser_never_crashes_and_output_is_clean(raw):
    form, errors = parse_petition_form(raw, FieldLimits())
    assert (form is None) == bool(errors)
    for e in errors:
        assert e.zh and e.en and e.code
    if form is not None:
        for text in (form.title, form.body, form.district or "", form.contact or ""):
            assert not any(ord(c) < 32 and c != "\n" for c in text)
            assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in text)
            assert text == text.strip()
        assert "\n" not in form.title
        assert 1 <= len(form.title) <= 100 and 1 <= len(form.body) <= 5000


@settings(max_examples=150)
@given(st.text())
def test_fuzz_masking_is_idempotent_and_total(text):
    once = abuse.normalise_text(text, True)
    from generator.bridge.privacy import mask_personal_data
    masked = mask_personal_data(once).text
    assert mask_personal_data(masked).text == masked
