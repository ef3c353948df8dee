"""Abuse defences: strict form parsing, form tokens with proof of work, rate limits.

Everything here is pure: times are passed in, so the checks are testable
without sleeping. The app in :mod:`.app` wires them to HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from generator.records import CATEGORIES, RATINGS


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, in words a citizen reads (zh first) and a code."""

    field: str
    code: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class FieldLimits:
    """Longest value each field may hold, in characters after normalisation."""

    title: int = 100
    body: int = 5000
    district: int = 40
    contact: int = 200
    comment: int = 1000


@dataclass(frozen=True)
class PetitionForm:
    """A submission that passed parsing: clean text, not yet masked."""

    category: str
    title: str
    body: str
    district: str | None
    contact: str | None
    form_token: str
    pow_nonce: str | None


@dataclass(frozen=True)
class RatingForm:
    rating: str
    comment: str | None


# Control and format characters that can hide or reorder text (bidi overrides
# such as U+202E, zero-width characters) are dropped; newlines are kept in
# multi-line fields.
_BIDI_AND_INVISIBLE = {0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF,
                       *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _removal_table() -> dict[int, str | None]:
    """Return a str.translate table deleting control, format (bidi, zero-width),
    surrogate, private-use and unassigned characters of the BMP and the tag
    characters, and turning tabs into spaces."""
    table: dict[int, str | None] = {cp: None for cp in _BIDI_AND_INVISIBLE}
    for cp in range(0x10000):
        if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            table[cp] = None
    for cp in range(0xE0000, 0xE0080):
        table[cp] = None
    table[ord("\t")] = " "
    del table[ord("\n")]
    return table


_REMOVE = _removal_table()


def normalise_text(value: str, multiline: bool) -> str:
    """Return ``value`` in NFC with control, bidi and invisible characters removed,
    line ends unified, and surrounding whitespace trimmed."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    text = value.translate(_REMOVE)
    if multiline:
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    else:
        text = text.replace("\n", " ")
    return text.strip()


PETITION_FIELDS = ("category", "title", "body", "district", "contact", "consent",
                   "form_token", "pow", "website", "lang")
RATING_FIELDS = ("rating", "comment", "lang")
HONEYPOT = "website"


def _err(field_name: str, code: str, zh: str, en: str) -> FieldError:
    return FieldError(field_name, code, zh, en)


def _single_strings(raw: Mapping[str, Any], known: Iterable[str]) -> tuple[dict[str, str], list[FieldError]]:
    """Return the known fields as single strings, and errors for anything else."""
    known = tuple(known)
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in raw.items():
        if key not in known:
            errors.append(_err(str(key)[:40], "unknown_field", "表单中有不认识的字段，请刷新页面后重新填写。",
                               "The form has a field the bridge does not know; reload the page and fill it in again."))
            continue
        if isinstance(value, list):
            if len(value) != 1:
                errors.append(_err(key, "repeated", "该字段只能填写一次。", "This field may be given only once."))
                continue
            value = value[0]
        if isinstance(value, bool):
            value = "yes" if value else ""
        if not isinstance(value, str):
            errors.append(_err(key, "not_text", "该字段应为文字。", "This field must be text."))
            continue
        values[key] = value
    return values, errors


def _text(values: dict[str, str], name: str, limit: int, required: bool, multiline: bool,
          label_zh: str, label_en: str, errors: list[FieldError]) -> str | None:
    text = normalise_text(values.get(name, ""), multiline)
    if not text:
        if required:
            errors.append(_err(name, "required", f"请填写{label_zh}。", f"Please fill in the {label_en}."))
        return None
    if len(text) > limit:
        errors.append(_err(name, "too_long", f"{label_zh}最多 {limit} 个字，现在有 {len(text)} 个字。",
                           f"The {label_en} may have at most {limit} characters; it has {len(text)}."))
    return text


def _first_per_field(errors: list[FieldError]) -> list[FieldError]:
    """Return the errors with only the first for each field (a repeated field is
    not also reported as missing)."""
    seen: set[str] = set()
    kept = []
    for e in errors:
        if e.field not in seen:
            seen.add(e.field)
            kept.append(e)
    return kept


def parse_petition_form(raw: Mapping[str, Any], limits: FieldLimits,
                        districts: tuple[str, ...] = ()) -> tuple[PetitionForm | None, list[FieldError]]:
    """Return a clean petition form, or None and every problem found at once."""
    values, errors = _single_strings(raw, PETITION_FIELDS)
    if values.get(HONEYPOT, "").strip():
        errors.append(_err(HONEYPOT, "honeypot", "请将“网址”一栏留空（它是给自动程序设的）。",
                           "Please leave the 'website' field empty (it is a trap for robots)."))
    category = values.get("category", "").strip()
    if category not in CATEGORIES:
        errors.append(_err("category", "required" if not category else "invalid",
                           "请选择诉求类型：咨询、投诉、求助、建议或举报。",
                           "Please choose a category: consultation, complaint, help, suggestion or report."))
    title = _text(values, "title", limits.title, True, False, "标题", "title", errors)
    body = _text(values, "body", limits.body, True, True, "诉求内容", "text", errors)
    district = _text(values, "district", limits.district, False, False, "所在区县", "district", errors)
    if district and districts and district not in districts:
        errors.append(_err("district", "invalid", "请从列表中选择所在区县。", "Please choose a district from the list."))
    contact = _text(values, "contact", limits.contact, False, False, "联系方式", "contact", errors)
    if values.get("consent", "").strip().lower() not in ("yes", "on", "true", "1"):
        errors.append(_err("consent", "required", "请阅读并勾选同意公开说明。",
                           "Please read and tick the consent to publication."))
    token = values.get("form_token", "").strip()
    if not token:
        errors.append(_err("form_token", "required", "表单已失效，请刷新页面。", "The form has expired; reload the page."))
    nonce = values.get("pow", "").strip() or None
    if errors:
        return None, _first_per_field(errors)
    assert title is not None and body is not None
    return PetitionForm(category, title, body, district, contact, token, nonce), []


def parse_rating_form(raw: Mapping[str, Any], limits: FieldLimits) -> tuple[RatingForm | None, list[FieldError]]:
    """Return a clean rating, or None and every problem found."""
    values, errors = _single_strings(raw, RATING_FIELDS)
    rating = values.get("rating", "").strip()
    if rating not in RATINGS:
        errors.append(_err("rating", "required" if not rating else "invalid",
                           "请选择：满意、基本满意或不满意。",
                           "Please choose: satisfied, basically satisfied or dissatisfied."))
    comment = _text(values, "comment", limits.comment, False, True, "评价意见", "comment", errors)
    if errors:
        return None, _first_per_field(errors)
    return RatingForm(rating, comment), []


# ---------------------------------------------------------------------------
# Form tokens and proof of work

@dataclass(frozen=True)
class FormToken:
    """A signed token handed out with each form load.

    ``key`` is the idempotency key: posting the same form twice returns the
    same receipt. ``issued`` (Unix seconds) gives the minimum fill time.
    ``bits`` is the proof-of-work difficulty the solver must meet.
    """

    key: str
    issued: int
    bits: int


def _sign(secret: bytes, *parts: str) -> str:
    return hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def issue_form_token(secret: bytes, now: float, bits: int) -> str:
    """Return a new signed form token ``v1.<key>.<issued>.<bits>.<signature>``."""
    key = secrets.token_hex(12)
    issued = str(int(now))
    return ".".join(("v1", key, issued, str(bits), _sign(secret, "form", key, issued, str(bits))))


def leading_zero_bits(digest: bytes) -> int:
    """Return how many leading zero bits a digest has."""
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def pow_digest(token: str, nonce: str) -> bytes:
    return hashlib.sha256(f"{token}:{nonce}".encode()).digest()


def solve_pow(token: str, bits: int) -> str:
    """Return a nonce whose SHA-256 with the token has ``bits`` leading zero bits
    (what the browser's solver does; used by tests, the bench and the fallback)."""
    n = 0
    while leading_zero_bits(pow_digest(token, str(n))) < bits:
        n += 1
    return str(n)


@dataclass(frozen=True)
class TokenCheck:
    token: FormToken | None
    errors: tuple[FieldError, ...]
    proof_of_work: bool  # False: no nonce given (no JavaScript); the stricter limit applies


def check_form_token(secret: bytes, raw: str, nonce: str | None, now: float,
                     min_fill_seconds: float, max_age_seconds: float) -> TokenCheck:
    """Return the token's contents and any problem with its signature, its age or
    its proof of work."""
    bad = _err("form_token", "invalid", "表单已失效，请刷新页面后重新提交（您填写的内容已保留）。",
               "The form has expired; reload the page and submit again (what you wrote is kept).")
    parts = raw.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not parts[2].isdigit() or not parts[3].isdigit():
        return TokenCheck(None, (bad,), False)
    _, key, issued, bits, sig = parts
    if not hmac.compare_digest(sig, _sign(secret, "form", key, issued, bits)):
        return TokenCheck(None, (bad,), False)
    token = FormToken(key, int(issued), int(bits))
    age = now - token.issued
    if age > max_age_seconds:
        return TokenCheck(token, (bad,), False)
    if age < min_fill_seconds:
        return TokenCheck(token, (_err("form_token", "too_fast",
                                       "提交太快了，请稍等几秒后再提交（您填写的内容已保留）。",
                                       "That was too fast; wait a few seconds and submit again (what you wrote is kept)."),),
                          False)
    if nonce is None:
        return TokenCheck(token, (), False)
    if len(nonce) > 20 or leading_zero_bits(pow_digest(raw, nonce)) < token.bits:
        return TokenCheck(token, (_err("pow", "invalid", "安全校验未通过，请刷新页面后重试。",
                                       "The anti-robot check failed; reload the page and try again."),), False)
    return TokenCheck(token, (), True)


# ---------------------------------------------------------------------------
# Client addresses and rate limits

def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """Return the client's address: the peer, unless the peer is a trusted proxy,
    in which case the right-most untrusted address of X-Forwarded-For."""
    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted_proxies)

    peer = peer or "0.0.0.0"
    if not forwarded_for or not trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a forged, unparsable hop: fall back to the proxy itself
            return hop
    return hops[0] if hops else peer


def address_prefix(address: str, v4_bits: int, v6_bits: int) -> str:
    """Return the network prefix an address is limited by (one household or
    one customer's IPv6 allocation shares a bucket)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "invalid"
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class BucketStore:
    """Rate-limit buckets on disk (SQLite, WAL), so a restart does not hand every
    address a fresh burst. Each limiter writes its bucket after every take; a
    full bucket is the same as none, so full ones are deleted."""

    def __init__(self, path: str):
        import sqlite3
        import threading
        self.path = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a process crash or restart loses nothing; a power loss may
        # forget the last moments of limiting, which is acceptable.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("CREATE TABLE IF NOT EXISTS buckets (limiter TEXT NOT NULL, key TEXT NOT NULL, "
                          "tokens REAL NOT NULL, updated REAL NOT NULL, PRIMARY KEY (limiter, key))")

    def load(self, limiter: str, key: str) -> tuple[float, float] | None:
        with self._lock:
            row = self.conn.execute("SELECT tokens, updated FROM buckets WHERE limiter=? AND key=?",
                                    (limiter, key)).fetchone()
        return (row[0], row[1]) if row else None

    def save(self, limiter: str, key: str, tokens: float, updated: float) -> None:
        with self._lock:
            self.conn.execute("INSERT INTO buckets(limiter, key, tokens, updated) VALUES(?, ?, ?, ?) "
                              "ON CONFLICT(limiter, key) DO UPDATE SET tokens=excluded.tokens, "
                              "updated=excluded.updated", (limiter, key, tokens, updated))

    def forget_full(self, limiter: str, burst: float, rate_per_second: float, now: float) -> None:
        """Delete the buckets of ``limiter`` that have refilled completely by ``now``."""
        with self._lock:
            self.conn.execute("DELETE FROM buckets WHERE limiter=? AND tokens + (? - updated) * ? >= ?",
                              (limiter, now, rate_per_second, burst))

    def close(self) -> None:
        with self._lock:
            self.conn.close()


@dataclass
class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``.

    With a ``store`` every bucket is also kept on disk under ``name``, so the
    limit holds across restarts.
    """

    per_minute: float
    burst: int
    max_keys: int = 100_000
    store: BucketStore | None = None
    name: str = "submit"
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key``; return 0 when allowed, else the seconds to wait."""
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            saved = self.store.load(self.name, key) if self.store else None
            bucket = _Bucket(*saved) if saved else _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.updated) * rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        if self.store:
            self.store.save(self.name, key, bucket.tokens, bucket.updated)
        if allowed:
            return 0.0
        return (1.0 - bucket.tokens) / rate if rate > 0 else 3600.0

    def _forget_full(self, now: float) -> None:
        rate = self.per_minute / 60.0
        for key in [k for k, b in self._buckets.items()
                    if b.tokens + (now - b.updated) * rate >= self.burst]:
            del self._buckets[key]
        if self.store:
            self.store.forget_full(self.name, float(self.burst), rate, now)
        if len(self._buckets) >= self.max_keys:  # still full: drop the oldest half (kept on disk)
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: self.max_keys // 2]:
                del self._buckets[key]
