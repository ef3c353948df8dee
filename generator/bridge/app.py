"""The bridge's web service: submit, receipt, rate, health and metrics.

Routes are an explicit list; handlers are plain request-to-response functions
over :class:`Bridge`, which holds the pure checks, the outbox and the provider.
A submission is committed to the outbox before the response is sent; the
worker thread publishes it. Forge errors never reach a citizen: publishing is
asynchronous, and the receipt shows only the state.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import ipaddress
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from generator.records import CATEGORIES, RATINGS

from . import abuse
from .abuse import FieldError, FieldLimits
from .config import origin_of
from .compose import CATEGORY_ZH, feedback_record, petition_record, pseudonym
from .outbox import AlreadyExists, Outbox, Receipt
from .privacy import ContactSealer, mask_personal_data
from .providers import ForgeError, Provider

log = logging.getLogger("wenzheng.bridge.app")
HERE = Path(__file__).parent

STATE_WORDS = {
    "queued": ("已受理，排队发布中", "received, queued for publication"),
    "batched": ("已受理，正在发布", "received, being published"),
    "opened": ("已提交合并请求，待中心审核", "pull request opened, awaiting the centre"),
    "merged": ("已合并入档案", "merged into the archive"),
    "published": ("已公开", "published"),
    "closed": ("未予合并（见合并请求说明）", "not merged (see the pull request)"),
}
RATING_WORDS = {"satisfied": ("满意", "satisfied"), "basically_satisfied": ("基本满意", "basically satisfied"),
                "dissatisfied": ("不满意", "dissatisfied")}


class BodyTooLarge(Exception):
    pass


@dataclass
class Metrics:
    accepted: int = 0
    replayed: int = 0
    ratings: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


@dataclass(frozen=True)
class Outcome:
    """What a submission or rating came to: a status code and either a receipt or errors."""

    status: int
    receipt_token: str | None = None
    petition_id: str | None = None
    errors: tuple[FieldError, ...] = ()
    retry_after: int | None = None


@dataclass(frozen=True)
class Prepared:
    """A checked petition, ready to store: ``store(outbox)`` writes it."""

    key: str
    token: str
    flags: list[str]
    store: Callable[[Outbox], Any]


class GroupCommitter:
    """Stores petitions from one thread, many per transaction.

    With ``synchronous=full`` every commit waits for the disk (about 10 ms
    here); committing the petitions that arrived meanwhile together keeps
    that wait off the event loop and shares it among them, so the receipt is
    still only sent once the petition is on disk.
    """

    def __init__(self, path: str, synchronous: str, max_group: int = 128):
        import queue
        import threading
        self.outbox = Outbox(path, synchronous)
        self.max_group = max_group
        self._queue: "queue.Queue" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    async def run(self, operation: Callable[[Outbox], Any]) -> Any:
        import asyncio
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((operation, future, loop))
        return await future

    def _run(self) -> None:
        import queue
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            try:
                results = self.outbox.run_group([lambda op=op: op(self.outbox) for op, _, _ in group])
            except Exception as exc:  # the disk failed: every caller in the group hears it
                results = [(False, exc)] * len(group)
            for (_, future, loop), result in zip(group, results):
                loop.call_soon_threadsafe(_settle, future, result)
        self.outbox.close()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)


def _settle(future, result) -> None:
    if future.cancelled():
        return
    ok, value = result
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Bridge:
    """The service's state and its operations, independent of HTTP."""

    def __init__(self, cfg, provider: Provider, clock: Callable[[], float]):
        self.cfg = cfg
        self.provider = provider
        self.clock = clock
        self.secret = cfg.secret.encode()
        self.tz = ZoneInfo(cfg.timezone)
        self.limits = FieldLimits(cfg.limits_title, cfg.limits_body, cfg.limits_district,
                                  cfg.limits_contact, cfg.limits_comment)
        self.sealer = ContactSealer(cfg.contact_recipient)
        self.outbox = Outbox(cfg.database, cfg.sqlite_synchronous)
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in cfg.abuse_trusted_proxies)
        self.buckets = abuse.BucketStore(cfg.abuse_state_file)
        self.limiter = abuse.RateLimiter(cfg.abuse_per_minute, cfg.abuse_burst, store=self.buckets, name="submit")
        self.nojs_limiter = abuse.RateLimiter(cfg.abuse_nojs_per_hour / 60.0, max(1, int(cfg.abuse_nojs_per_hour)),
                                              store=self.buckets, name="nojs")
        self.origins = allowed_origins(cfg)
        self.metrics = Metrics()
        self._closed_cache: dict[str, tuple[float, list[str] | None]] = {}

    def sync_floor(self) -> None:
        """Make petition ids continue after the highest id on the archive's main
        branch (call before accepting; the app does it at start)."""
        for year, seq in self.provider.highest_ids().items():
            self.outbox.raise_floor(year, seq)

    # -- tokens --------------------------------------------------------
    def receipt_token(self, form_key: str) -> str:
        return hmac.new(self.secret, f"receipt|{form_key}".encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def receipt_hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def new_form_token(self) -> str:
        return abuse.issue_form_token(self.secret, self.clock(), self.cfg.abuse_pow_bits)

    def cross_origin(self, origin: str | None, referer: str | None) -> str | None:
        """Return the foreign origin a browser post came from, or None when it
        came from an allowed origin (or from a client that sends neither
        header, which no browser does for a cross-site post)."""
        if origin is not None:
            origin = origin.strip()
            return None if origin in self.origins else (origin or "null")[:200]
        if referer:
            found = origin_of(referer)
            return None if found in self.origins else (found or "null")
        return None

    def prefix(self, peer: str | None, forwarded: str | None) -> str:
        address = abuse.client_address(peer, forwarded, self.trusted)
        return abuse.address_prefix(address, self.cfg.abuse_ipv4_prefix, self.cfg.abuse_ipv6_prefix)

    # -- submitting ------------------------------------------------------
    def submit(self, raw: dict[str, Any], prefix: str) -> Outcome:
        """Return the outcome of one petition form: accepted (201), the same
        receipt again for a repeated form (200), or refused with every reason."""
        prepared = self.prepare(raw, prefix)
        if isinstance(prepared, Outcome):
            return prepared
        try:
            item = prepared.store(self.outbox)
        except AlreadyExists:
            return self.replayed(prepared)
        return self.accepted(prepared, item)

    def replayed(self, prepared: "Prepared") -> Outcome:
        existing = self.outbox.find_by_idem(prepared.key)
        return Outcome(200, prepared.token, existing.petition_id if existing else None)

    def accepted(self, prepared: "Prepared", item) -> Outcome:
        self.metrics.accepted += 1
        log.info("petition accepted", extra={"fields": {"petition": item.petition_id, "flags": prepared.flags}})
        return Outcome(201, prepared.token, item.petition_id)

    def prepare(self, raw: dict[str, Any], prefix: str) -> "Outcome | Prepared":
        """Return a refusal, an earlier receipt, or the checked, masked and sealed
        petition ready to store (storing is separate so it can be group-committed)."""
        now = self.clock()
        form, errors = abuse.parse_petition_form(raw, self.limits, tuple(self.cfg.districts))
        token_raw = _one(raw, "form_token").strip()
        nonce = _one(raw, "pow").strip() or None
        check = abuse.check_form_token(self.secret, token_raw, nonce, now,
                                       self.cfg.abuse_min_fill_seconds, self.cfg.abuse_max_form_age_seconds)
        if check.token is not None and not check.errors:
            existing = self.outbox.find_by_idem(check.token.key)
            if existing is not None:
                self.metrics.replayed += 1
                return Outcome(200, self.receipt_token(check.token.key), existing.petition_id)
        wait = self.limiter.take(prefix, now)
        if wait > 0:
            self.metrics.refuse("rate_limited")
            return Outcome(429, errors=(_rate_error(wait),), retry_after=int(wait) + 1)
        token_errors = [e for e in check.errors if not any(x.field == e.field for x in errors)]
        errors = list(errors) + token_errors
        if not errors and not check.proof_of_work:
            if not self.cfg.abuse_allow_without_pow:
                errors.append(FieldError("pow", "required", "请启用 JavaScript 以完成安全校验。",
                                         "Please enable JavaScript to complete the anti-robot check."))
            else:
                wait = self.nojs_limiter.take(prefix, now)
                if wait > 0:
                    self.metrics.refuse("nojs_rate_limited")
                    return Outcome(429, errors=(_rate_error(wait),), retry_after=int(wait) + 1)
        if errors:
            self.metrics.refuse(errors[0].code)
            return Outcome(400, errors=tuple(errors))
        assert form is not None and check.token is not None
        key = check.token.key
        title = mask_personal_data(form.title)
        body = mask_personal_data(form.body)
        district = mask_personal_data(form.district) if form.district else None
        flags = sorted(set(title.flags) | set(body.flags) | set(district.flags if district else ()))
        if not check.proof_of_work:
            flags.append("no_pow")
        title_text, body_text = title.clipped(self.limits.title), body.clipped(self.limits.body)
        district_text = district.clipped(self.limits.district) if district else None
        received_at = datetime.fromtimestamp(int(now), self.tz)
        display_name = f"网友 {pseudonym(self.secret, key)}"
        sealed = self.sealer.seal(form.contact) if form.contact else None

        def render(petition_id: str):
            path, content = petition_record(petition_id, received_at, form.category, title_text, body_text,
                                            display_name, district_text)
            return (path.rsplit("/", 1)[0], path, content, title_text, form.category, flags,
                    received_at.isoformat())

        token = self.receipt_token(key)
        receipt_hash = self.receipt_hash(token)
        expires = now + self.cfg.contact_retention_days * 86400

        def store(outbox: Outbox):
            return outbox.insert_petition(idem_key=key, receipt_hash=receipt_hash, year=received_at.year,
                                          render=render, sealed_contact=sealed, contact_expires_at=expires,
                                          now=now)

        return Prepared(key, token, flags, store)

    # -- receipts and ratings --------------------------------------------
    def receipt(self, token: str) -> Receipt | None:
        if not token or len(token) > 64:
            return None
        return self.outbox.receipt(self.receipt_hash(token))

    def folder_on_main(self, folder: str) -> list[str] | None:
        """Return the petition folder's files on main, cached for a few seconds."""
        now = self.clock()
        cached = self._closed_cache.get(folder)
        if cached and now - cached[0] < 10:
            return cached[1]
        names = self.provider.folder_files(folder)
        self._closed_cache[folder] = (now, names)
        if len(self._closed_cache) > 10_000:
            self._closed_cache.clear()
        return names

    @staticmethod
    def is_closed(names: list[str] | None) -> bool:
        import re
        return bool(names) and any(re.fullmatch(r"\d{8}T\d{6}Z-closed(-\d+)?\.yaml", n) for n in names)

    def rate(self, token: str, raw: dict[str, Any], prefix: str, names: list[str] | None) -> Outcome:
        """Return the outcome of rating a closed petition; ``names`` are the
        petition folder's files on main (looked up by the caller)."""
        now = self.clock()
        receipt = self.receipt(token)
        if receipt is None:
            return Outcome(404, errors=(_not_found(),))
        wait = self.limiter.take(prefix, now)
        if wait > 0:
            self.metrics.refuse("rate_limited")
            return Outcome(429, errors=(_rate_error(wait),), retry_after=int(wait) + 1)
        form, errors = abuse.parse_rating_form(raw, self.limits)
        if errors:
            return Outcome(400, errors=tuple(errors))
        assert form is not None
        if receipt.rating_state is not None:
            return Outcome(409, errors=(FieldError("rating", "already_rated", "您已评价过这件诉求，谢谢。",
                                                   "You have already rated this petition; thank you."),))
        if not self.is_closed(names):
            return Outcome(409, errors=(FieldError("rating", "not_closed", "诉求办结后才能评价。",
                                                   "A petition can be rated once it is closed."),))
        comment = mask_personal_data(form.comment) if form.comment else None
        at = datetime.fromtimestamp(int(now), self.tz)
        path, content = feedback_record(receipt.folder, at, form.rating,
                                        comment.clipped(self.limits.comment) if comment else None,
                                        names or [])
        try:
            self.outbox.add_feedback(petition_id=receipt.petition_id, folder=receipt.folder, path=path,
                                     content=content, flags=comment.flags if comment else (),
                                     created_at=at.isoformat(), now=now)
        except AlreadyExists:
            return Outcome(409, errors=(FieldError("rating", "already_rated", "您已评价过这件诉求，谢谢。",
                                                   "You have already rated this petition; thank you."),))
        self.metrics.ratings += 1
        log.info("rating accepted", extra={"fields": {"petition": receipt.petition_id}})
        return Outcome(201, token, receipt.petition_id)

    def receipt_json(self, token: str, receipt: Receipt, names: list[str] | None) -> dict[str, Any]:
        zh, en = STATE_WORDS.get(receipt.state, (receipt.state, receipt.state))
        site = self.cfg.site_url.rstrip("/")
        return {
            "petition_id": receipt.petition_id,
            "title": receipt.title,
            "status": receipt.state,
            "status_zh": zh,
            "status_en": en,
            "received_at": receipt.created_at,
            "pull_request_url": receipt.pr_url,
            "petition_url": f"{site}/petitions/{receipt.petition_id}/" if site and receipt.state == "published" else None,
            "receipt_url": f"{self.cfg.public_url.rstrip('/')}/receipt/{token}",
            "closed": self.is_closed(names),
            "rating": receipt.rating_state,
            "can_rate": receipt.rating_state is None and self.is_closed(names),
        }


def _one(raw: dict[str, Any], key: str) -> str:
    """Return a field's single text value (JSON value or urlencoded list), or ''."""
    value = raw.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else ""


def _rate_error(wait: float) -> FieldError:
    seconds = int(wait) + 1
    return FieldError("form", "rate_limited",
                      f"提交过于频繁，请 {seconds} 秒后再试（您填写的内容已保留）。",
                      f"Too many submissions from your network; try again in {seconds} s (what you wrote is kept).")


def allowed_origins(cfg) -> frozenset[str]:
    """Return the origins whose pages may post to the bridge: its own, the
    archive site's, and ``allowed_origins``."""
    found = {origin_of(u) for u in (cfg.public_url, cfg.site_url) if u}
    found.update(cfg.allowed_origins)
    return frozenset(o for o in found if o)


CROSS_ORIGIN = FieldError("form", "cross_origin",
                          "此提交来自其他网站，已被拒绝。请直接在本站的提交页面填写。",
                          "This submission came from another website and was refused. "
                          "Please fill in the form on this site's own submission page.")
TOO_DEEP = FieldError("form", "too_deep", "请求内容嵌套过深，无法处理。请提交只含文字字段的 JSON 对象。",
                      "The request body is nested too deeply to read. Send a JSON object whose fields are text.")
NOT_JSON = FieldError("form", "not_json", "请求内容不是 JSON 对象。", "The request body is not a JSON object.")

# Sent with every response. The pages load only their own script and style;
# nothing may frame them (clickjacking); the receipt token in the URL never
# leaves in a Referer (links to the forge and the site are cross-origin), while
# same-origin posts keep their Origin header for the check above.
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def parse_json_object(body: bytes) -> "tuple[dict | None, FieldError | None]":
    """Return a request body's JSON object, or the error to answer (400)."""
    try:
        raw = json.loads(body)
    except RecursionError:
        return None, TOO_DEEP
    except (ValueError, UnicodeDecodeError):
        return None, NOT_JSON
    return (raw, None) if isinstance(raw, dict) else (None, NOT_JSON)


class BridgeApp(Starlette):
    """The Starlette app with the security headers added to every response,
    including the error pages Starlette itself makes."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in present]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def _not_found() -> FieldError:
    return FieldError("receipt", "not_found", "找不到这张回执，请核对链接。", "No such receipt; check the link.")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, html: bool):
    err = FieldError("form", "too_large", f"提交内容过长（上限 {limit // 1024} KB），请删减后再试。",
                     f"The submission is too large (limit {limit // 1024} KB); shorten it and try again.")
    return err


def create_app(cfg, provider: Provider, clock: Callable[[], float] = time.time,
               run_worker: bool = True) -> Starlette:
    """Return the bridge's ASGI app; with ``run_worker`` it publishes in a thread too."""
    bridge = Bridge(cfg, provider, clock)
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                   autoescape=True, trim_blocks=True, lstrip_blocks=True)
    limit = cfg.limits_max_body_bytes

    def page(name: str, status: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
        html = templates.get_template(name).render(categories=[(c, CATEGORY_ZH[c]) for c in CATEGORIES],
                                                   ratings=[(r, *RATING_WORDS[r]) for r in RATINGS],
                                                   cfg=cfg, districts=cfg.districts, **context)
        return HTMLResponse(html, status_code=status, headers=headers)

    async def submit_async(raw: dict, prefix: str) -> Outcome:
        prepared = bridge.prepare(raw, prefix)
        if isinstance(prepared, Outcome):
            return prepared
        try:
            item = await app.state.committer.run(prepared.store)
        except AlreadyExists:
            return bridge.replayed(prepared)
        return bridge.accepted(prepared, item)

    def client_prefix(request: Request) -> str:
        return bridge.prefix(request.client.host if request.client else None,
                             request.headers.get("x-forwarded-for"))

    def form_page(values: dict, errors, status: int = 200, retry_after: int | None = None) -> HTMLResponse:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return page("submit.html", status, headers, token=bridge.new_form_token(), values=values,
                    errors={e.field: e for e in errors}, error_list=list(errors),
                    pow_bits=cfg.abuse_pow_bits)

    async def submit_page(request: Request) -> Response:
        return form_page({}, [])

    def foreign(request: Request) -> bool:
        found = bridge.cross_origin(request.headers.get("origin"), request.headers.get("referer"))
        if found is None:
            return False
        bridge.metrics.refuse("cross_origin")
        log.warning("cross-origin post refused", extra={"fields": {"origin": found, "path": request.url.path}})
        return True

    async def submit_form(request: Request) -> Response:
        if foreign(request):
            return form_page({}, [CROSS_ORIGIN], 403)
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            bridge.metrics.refuse("too_large")
            return form_page({}, [_too_large(limit, True)], 413)
        raw = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        outcome = await submit_async(raw, client_prefix(request))
        if outcome.receipt_token:
            return RedirectResponse(f"/receipt/{outcome.receipt_token}?new=1", status_code=303)
        values = {k: v[0] for k, v in raw.items() if k in ("category", "title", "body", "district", "contact")
                  and len(v) == 1}
        return form_page(values, outcome.errors, outcome.status, outcome.retry_after)

    async def form_token_api(request: Request) -> Response:
        return JSONResponse({"form_token": bridge.new_form_token(), "pow_bits": cfg.abuse_pow_bits,
                             "min_fill_seconds": cfg.abuse_min_fill_seconds},
                            # the static site's form fetches a token from another origin
                            headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})

    def json_errors(outcome: Outcome) -> JSONResponse:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else None
        return JSONResponse({"errors": [e.as_dict() for e in outcome.errors]}, status_code=outcome.status,
                            headers=headers)

    def json_error(error: FieldError, status: int) -> JSONResponse:
        return JSONResponse({"errors": [error.as_dict()]}, status_code=status)

    async def submit_api(request: Request) -> Response:
        if foreign(request):
            return json_error(CROSS_ORIGIN, 403)
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            bridge.metrics.refuse("too_large")
            return json_error(_too_large(limit, False), 413)
        raw, error = parse_json_object(body)
        if error is not None:
            bridge.metrics.refuse(error.code)
            return json_error(error, 400)
        outcome = await submit_async(raw, client_prefix(request))
        if not outcome.receipt_token:
            return json_errors(outcome)
        base = cfg.public_url.rstrip("/")
        return JSONResponse({"petition_id": outcome.petition_id, "receipt_token": outcome.receipt_token,
                             "receipt_url": f"{base}/receipt/{outcome.receipt_token}",
                             "status": "queued" if outcome.status == 201 else "accepted_before"},
                            status_code=outcome.status)

    async def names_for(receipt: Receipt | None) -> list[str] | None:
        if receipt is None or receipt.state not in ("merged", "published"):
            return None
        try:
            return await run_in_threadpool(bridge.folder_on_main, receipt.folder)
        except ForgeError:
            return None  # the forge is away: the receipt still shows, without the rating form

    async def receipt_api(request: Request) -> Response:
        token = request.path_params["token"]
        receipt = bridge.receipt(token)
        if receipt is None:
            return JSONResponse({"errors": [_not_found().as_dict()]}, status_code=404)
        return JSONResponse(bridge.receipt_json(token, receipt, await names_for(receipt)),
                            headers={"Cache-Control": "no-store"})

    async def receipt_page(request: Request) -> Response:
        token = request.path_params["token"]
        receipt = bridge.receipt(token)
        if receipt is None:
            return page("receipt.html", 404, receipt=None, info=None, errors={})
        info = bridge.receipt_json(token, receipt, await names_for(receipt))
        return page("receipt.html", receipt=receipt, info=info, errors={}, new=request.query_params.get("new"),
                    token=token, values={})

    async def rate_common(request: Request, raw: dict) -> Outcome:
        token = request.path_params["token"]
        names = await names_for(bridge.receipt(token))
        return bridge.rate(token, raw, client_prefix(request), names)

    async def rate_form(request: Request) -> Response:
        token = request.path_params["token"]
        if foreign(request):
            receipt = bridge.receipt(token)
            info = bridge.receipt_json(token, receipt, None) if receipt else None
            return page("receipt.html", 403, receipt=receipt, info=info, token=token,
                        errors={"rating": CROSS_ORIGIN}, values={})
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            return PlainTextResponse("413", status_code=413)
        raw = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        outcome = await rate_common(request, raw)
        if outcome.status == 201:
            return RedirectResponse(f"/receipt/{token}", status_code=303)
        receipt = bridge.receipt(token)
        info = bridge.receipt_json(token, receipt, await names_for(receipt)) if receipt else None
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else None
        return page("receipt.html", outcome.status, headers, receipt=receipt, info=info, token=token,
                    errors={e.field: e for e in outcome.errors},
                    values={k: v[0] for k, v in raw.items() if len(v) == 1})

    async def rate_api(request: Request) -> Response:
        if foreign(request):
            return json_error(CROSS_ORIGIN, 403)
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge:
            return json_error(_too_large(limit, False), 413)
        raw, error = parse_json_object(body)
        if error is not None:
            return json_error(error, 400)
        outcome = await rate_common(request, raw)
        if outcome.status != 201:
            return json_errors(outcome)
        return JSONResponse({"petition_id": outcome.petition_id, "rating": "queued"}, status_code=201)

    async def health(request: Request) -> Response:
        try:
            counts = bridge.outbox.counts()
        except Exception:  # the database is the one thing health must report
            return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "provider": provider.name, "queue": counts})

    async def metrics(request: Request) -> Response:
        m = bridge.metrics
        lines = ["# HELP wenzheng_bridge_accepted_total Petitions accepted into the outbox.",
                 "# TYPE wenzheng_bridge_accepted_total counter",
                 f"wenzheng_bridge_accepted_total {m.accepted}",
                 "# TYPE wenzheng_bridge_replayed_total counter",
                 f"wenzheng_bridge_replayed_total {m.replayed}",
                 "# TYPE wenzheng_bridge_ratings_total counter",
                 f"wenzheng_bridge_ratings_total {m.ratings}",
                 "# TYPE wenzheng_bridge_refused_total counter"]
        lines += [f'wenzheng_bridge_refused_total{{reason="{r}"}} {n}' for r, n in sorted(m.refused.items())]
        lines.append("# TYPE wenzheng_bridge_items gauge")
        lines += [f'wenzheng_bridge_items{{state="{s}"}} {n}' for s, n in bridge.outbox.counts().items()]
        lines.append("# TYPE wenzheng_bridge_batches gauge")
        lines += [f'wenzheng_bridge_batches{{state="{s}"}} {n}' for s, n in sorted(bridge.outbox.batch_counts().items())]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def root(request: Request) -> Response:
        return RedirectResponse("/submit", status_code=302)

    routes = [
        Route("/", root),
        Route("/submit", submit_page, methods=["GET"]),
        Route("/submit", submit_form, methods=["POST"]),
        Route("/api/form", form_token_api, methods=["GET"]),
        Route("/api/petitions", submit_api, methods=["POST"]),
        Route("/api/receipts/{token}", receipt_api, methods=["GET"]),
        Route("/api/receipts/{token}/rating", rate_api, methods=["POST"]),
        Route("/receipt/{token}", receipt_page, methods=["GET"]),
        Route("/receipt/{token}/rate", rate_form, methods=["POST"]),
        Route("/healthz", health),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        worker = thread = None
        # Ids must continue after the highest on main before the first is
        # allocated; if the forge stays away, the worker raises the floor later
        # (docs/bridge.md: start the bridge while the forge is reachable).
        for attempt in range(3):
            try:
                await run_in_threadpool(bridge.sync_floor)
                break
            except ForgeError as exc:
                log.warning("could not read the highest petition id", extra={"fields": {
                    "error": str(exc), "attempt": attempt + 1}})
                await asyncio.sleep(1.0)
        app.state.committer = GroupCommitter(cfg.database, cfg.sqlite_synchronous)
        if run_worker:
            from .worker import Worker
            import threading
            worker = Worker(cfg, provider, clock)
            thread = threading.Thread(target=worker.run, name="bridge-worker", daemon=True)
            thread.start()
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                worker.stop.set()
                thread.join(timeout=30)
            app.state.committer.close()
            bridge.outbox.close()
            bridge.buckets.close()

    app = BridgeApp(routes=routes, lifespan=lifespan)
    app.state.bridge = bridge
    return app


def serve(cfg, provider: Provider, run_worker: bool = True) -> None:
    """Run the bridge under uvicorn as deployed (``wenzheng bridge serve``).

    uvicorn's own proxy-header handling is off: it would believe
    X-Forwarded-For from 127.0.0.1 whatever ``abuse.trusted_proxies`` says.
    The bridge reads the header itself, only from the listed proxies.
    No access log: it would write citizens' addresses to disk.
    """
    import uvicorn

    app = create_app(cfg, provider, clock=time.time, run_worker=run_worker)
    uvicorn.run(app, host=cfg.listen_host, port=cfg.listen_port, log_config=None, access_log=False,
                server_header=False, proxy_headers=False, forwarded_allow_ips="")
