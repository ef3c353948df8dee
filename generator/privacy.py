"""Masking personal data in public text: the one implementation.

Git cannot forget, so every text bound for the archive passes through
:func:`mask_personal_data` before anything is written: the bridge (petitions
and ratings), the importer (titles, texts, replies, addresses) and the
department tools (replies, requests, notes) all call it.

The masking errs towards masking. The text is first *normalised for finding*
(NFKC, so full-width digits, letters, ``＠``, ``．``, ``，`` and ``｜`` become
ASCII; the ideographic full stop ``。`` counts as a dot; zero-width characters
are ignored, as are combining marks; seven or more digits with three Chinese
ones at least, financial ones (壹贰叁…) included, in a row or in groups parted
by spaces, hyphens or commas, are read as digits), and runs of digits are read across the separators people type
between them (spaces, up to eight; hyphens of any width, dots, slashes,
brackets; commas, 、, ~, *, +, |, ;, : and line breaks, one kind throughout a number
that begins with an area code or a mobile's first digits, so that lists of
numbers are not glued together). Seven or more single digits parted by spaces or hyphens
(1 3 8 1 2 …) are one number spelled out, read on its own (masked whole if it
holds a mobile number, even with a digit too many). What is found there
is replaced in the *original* text, through an index map, so the rest of the
text (full-width Chinese punctuation included) stays as typed.

Masked: mobile numbers (11 digits from 13x–19x, with or without +86),
landlines with an area code (and without one right after a word such as 电话),
resident ID numbers of 15 and 18 characters whatever their check character
(an X after a space included), bank cards (16–19 digits; typed in groups of
four only when a card word such as 卡号/银行卡/账号 precedes them, they begin
with UnionPay's 62, or their Luhn check holds and they begin with a card
network's prefix: a list of room numbers 1301 1302 1303 1304 is no card), any
unbroken run of 20 or more digits, e-mail addresses (also with ``[at]``,
``(dot)``, `` at `` and `` dot `` spelled out, a Chinese name before the @,
or a name typed spaced out), and QQ/WeChat ids that follow their name.
Flagged for a moderator without masking (the place is the substance of many
petitions): street addresses with house numbers.

Dates (2026-11-22, 20261122), times, amounts, petition ids (2026-000123) and
other short numbers are left alone. Public phone numbers of offices may be
kept visible by passing them as ``keep`` (departments.yaml ``phones:``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

PHONE = "phone"
EMAIL = "email"
ID_CARD = "id_card"
BANK_CARD = "bank_card"
NUMBER = "number"
IM_ID = "im_id"
ADDRESS = "address"  # a flag only: the text is not masked

MARKERS = {
    PHONE: "[手机号已隐去]",
    EMAIL: "[邮箱已隐去]",
    ID_CARD: "[身份证号已隐去]",
    BANK_CARD: "[银行卡号已隐去]",
    NUMBER: "[号码已隐去]",
    IM_ID: "[QQ/微信号已隐去]",
}
LANDLINE_MARKER = "[电话号码已隐去]"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Characters people put between the digits of one number (after NFKC: ， is ",", ｜ is "|",
# ～ is "~", ； is ";", ： is ":"): one to three of them, or a run of up to eight spaces.
_SEPARATORS = " \t\n-‐‑‒–—―−.·・_/(),、~*+|;:"
_LIST_MARKS = ",、|\n~*+;:"
_SEP = r"(?:[" + re.escape(_SEPARATORS) + r"]{1,3}|[ \t]{4,8})"
_CHAIN_RE = re.compile(r"\d+(?:" + _SEP + r"\d+)*(?:" + _SEP + r"?[Xx](?![A-Za-z]))?")
# Mail providers common enough that "name at qq.com" is an address without any "dot" spelled out.
_MAIL_HOSTS = r"(?:qq|foxmail|163|126|yeah|139|189|sina|sohu|aliyun|gmail|outlook|hotmail|live|yahoo|icloud)"
_AT = r"(?:@|#|艾特|[(\[{<]\s*at\s*[)\]}>])"
_DOT = r"(?:\.|点|[(\[{<]\s*dot\s*[)\]}>]|\s+dot\s+)"
_EMAIL_RE = re.compile(
    r"(?:(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*|[\u4e00-\u9fff]{1,12}(?=\s*@))"
    r"(?:\s*" + _AT + r"\s*[A-Za-z0-9\-]+(?:\s*" + _DOT + r"\s*[A-Za-z0-9\-]+)*\s*" + _DOT
    + r"|\s+at\s+(?:[A-Za-z0-9\-]+(?:\s*" + _DOT + r"\s*[A-Za-z0-9\-]+)*\s+dot\s+"
    + r"|" + _MAIL_HOSTS + r"\s*" + _DOT + r"\s*(?:[A-Za-z0-9\-]+\s*" + _DOT + r"\s*)*))"
    + r"\s*[A-Za-z]{2,}(?![A-Za-z])", re.IGNORECASE)
# Words before an e-mail address that are not part of it ("邮箱张三@qq.com" masks 张三 only).
_EMAIL_LEAD_RE = re.compile(r"^[\u4e00-\u9fff]*(?:邮箱|邮件|电邮|信箱|地址|联系|发给|发到|发至)")
# English words before a spaced address ("mail me zhang san @ …") that are not part of its name.
_EMAIL_WORDS = {"at", "me", "to", "is", "my", "or", "and", "the", "email", "mail", "e-mail", "contact", "write",
                "send", "address", "please", "via", "by", "on", "from", "reach", "us", "him", "her"}
# A word shortly before a run of 4-digit groups that says it is a card or account number.
_CARD_WORD_RE = re.compile(r"(?:卡|账号|帐号|账户|帐户|card|account|a/c)", re.IGNORECASE)
# Card network prefixes (UnionPay 62 and 60/65/81, Visa 4, Mastercard 51–55 and 22–27, Amex 34/37, JCB 35).
_CARD_PREFIX_RE = re.compile(r"(?:62|60|65|81|4|5[1-5]|2[2-7]|3[457])")
_IM_RE = re.compile(
    r"(?<![A-Za-z0-9/._\-])(qq|扣扣|微信|wechat|weixin|vx|wx|v信)"
    r"([ \t]*(?:号码|号|id|账号)?[ \t]*(?::|是|为)?[ \t]*)"
    r"([A-Za-z0-9][A-Za-z0-9_\-]{4,19})(?![A-Za-z0-9_\-])", re.IGNORECASE)
# A word just before a short number that says it is a telephone number.
_PHONE_WORD_RE = re.compile(r"(?:电话|座机|固话|来电|致电|拨打|号码|tel|phone)\s*(?::|是|为)?\s*$",
                            re.IGNORECASE)
_ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fff](?:路|街|大道|道|巷|弄|胡同|里|村)\s*\d+\s*(?:号|弄|栋|幢|座)"
    r"|(?<!\d)\d+\s*(?:栋|幢|号楼|座)\s*(?:\d+\s*单元\s*)?\d+\s*(?:室|号|户)?"
    r"|(?<!\d)\d+\s*单元\s*\d+\s*室?"
    r"|(?<!\d)\d{3,4}\s*室")


def id_card_checksum_ok(number: str) -> bool:
    """Return whether an 18-character resident ID number has a valid check
    character (GB 11643, ISO 7064 MOD 11-2)."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    """Return whether a digit string passes the Luhn check bank cards carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Masked:
    """Text with personal data replaced, how many of each kind were masked,
    and what a moderator should look at although it was not masked."""

    text: str
    found: tuple[tuple[str, int], ...]
    review: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of personal data masked, sorted."""
        return tuple(kind for kind, _ in self.found)

    def clipped(self, limit: int) -> str:
        """Return the text cut to ``limit`` characters if its markers, longer
        than what they replace, made it longer; a marker is never cut through."""
        if len(self.text) <= limit:
            return self.text
        head = self.text[:limit - 1]
        for marker in set(MARKERS.values()) | {LANDLINE_MARKER}:
            for cut in range(1, len(marker)):
                if head.endswith(marker[:cut]):
                    head = head[:-cut]
                    break
        return head + "…"

    @property
    def flags(self) -> tuple[str, ...]:
        """Everything a moderator should know of: masked kinds and review flags, sorted."""
        return tuple(sorted(set(self.kinds) | set(self.review)))


_CHINESE_DIGITS = {"〇": "0", "零": "0", "一": "1", "幺": "1", "二": "2", "三": "3", "四": "4", "五": "5",
                   "六": "6", "七": "7", "八": "8", "九": "9",
                   # financial numerals (大写), simplified and traditional
                   "壹": "1", "贰": "2", "貳": "2", "叁": "3", "參": "3", "肆": "4", "伍": "5", "陆": "6",
                   "陸": "6", "柒": "7", "捌": "8", "玖": "9"}
# Seven or more digits in a row, three of them Chinese at least, also in groups parted by
# spaces, hyphens or commas (一三八 一二三四 五六七八, 一三八1234五六七八), are a number read
# out digit by digit, not a date (二〇二六年) or a count.
_CHINESE_DIGIT = "[0-9０-９" + "".join(_CHINESE_DIGITS) + "]"
_CHINESE_RUN_RE = re.compile(_CHINESE_DIGIT + r"(?:[ \t\u3000\-－，,、]{0,3}" + _CHINESE_DIGIT + ")*")


def _normalise(text: str) -> tuple[str, list[int]]:
    """Return the text as searched (NFKC, 。 as a dot, no zero-width characters,
    long runs of Chinese digits as digits) and, for each of its characters, the
    index of the original character."""
    chars: list[str] = []
    where: list[int] = []
    spelled = {i for m in _CHINESE_RUN_RE.finditer(text)
               if sum(ch in _CHINESE_DIGITS for ch in m.group(0)) >= 3
               and sum(ch in _CHINESE_DIGITS or ch.isdigit() for ch in m.group(0)) >= 7
               for i in range(m.start(), m.end()) if text[i] in _CHINESE_DIGITS}
    for i, ch in enumerate(text):
        if i in spelled:
            chars.append(_CHINESE_DIGITS[ch])
            where.append(i)
            continue
        if ch.isascii():
            chars.append(ch)
            where.append(i)
            continue
        if unicodedata.category(ch) in ("Cf", "Mn", "Me"):  # zero-width, combining, keycaps
            continue
        folded = unicodedata.normalize("NFKC", ch)
        for out in folded:
            chars.append("." if out in "。｡" else out)
            where.append(i)
    return "".join(chars), where


def _date_ok(yymmdd: str, century: bool) -> bool:
    if century and yymmdd[:2] not in ("18", "19", "20"):
        return False
    mm, dd = int(yymmdd[-4:-2]), int(yymmdd[-2:])
    return 1 <= mm <= 12 and 1 <= dd <= 31


def _classify(groups: list[str], whole_chain_start: bool, before: str, fraction: bool,
              dotted: bool) -> str | None:
    """Return the kind of number the digit groups form together, or None.

    One group is a number typed without separators; several are one typed with
    them, which is held to stricter shapes (a date range is digit groups too),
    as is a ``fraction``, one group right after a decimal point (40.8379371025…).
    Groups joined by a dot (``dotted``) or after one may form a phone number
    (188.1234.5678), never an ID or card number: those are decimals
    (37.8046840108425, 1.116423611111111)."""
    digits = "".join(groups)
    single = len(groups) == 1 and not fraction
    if not digits[:-1].isdigit():
        return None
    last_x = not digits[-1].isdigit()
    n = len(digits)
    if not last_x:
        national = digits
        parts = groups
        if single and n in (13, 15) and digits.startswith(("86", "0086")):
            national = digits[-11:]
        elif len(groups) > 1 and groups[0] in ("86", "0086"):
            parts = groups[1:]
            national = "".join(parts)
        if len(national) == 11 and re.fullmatch(r"1[3-9]\d{9}", national) and (
                len(parts) == 1 or len(parts[0]) >= 3):
            return "mobile"
        if (single or len(groups[0]) >= 5) and not fraction and re.fullmatch(r"0[1-9]\d{8,10}", digits):
            return "landline"  # 057765889999, 05278456 1234
        if len(parts) > 1 and re.fullmatch(r"0[1-9]\d{1,2}" if parts is groups else r"[1-9]\d{1,2}", parts[0]):
            rest = "".join(parts[1:])
            if 7 <= len(rest) <= 8 and rest[0] != "0":
                return "landline"
        if whole_chain_start and 7 <= n <= 8 and digits[0] not in "01" and _PHONE_WORD_RE.search(before):
            return "local"
    if dotted or fraction or (len(groups) > 1 and min(len(g) for g in groups[:-1]) < 3):
        return None
    card_like = len(groups) > 1 and (all(len(g) == 4 for g in groups[:-1])
                                     or (len(groups) == 2 and len(groups[0]) == 6))
    # Groups of four are a card only if something says so: a card word before them, UnionPay's
    # prefix 62, or a card network's prefix with the Luhn check holding. A list of room or
    # house numbers (1301 1302 1303 1304) is groups of four too.
    card = not last_x and card_like and (bool(_CARD_WORD_RE.search(before)) or digits.startswith("62")
                          or (luhn_ok(digits) and _CARD_PREFIX_RE.match(digits) is not None))
    if n == 18:
        id_like = last_x or id_card_checksum_ok(digits) or _date_ok(digits[6:14], True)
        if id_like or (single and not luhn_ok(digits)):
            return ID_CARD
        return BANK_CARD if single or card else None
    if last_x:
        return None
    if n == 15 and (single or _date_ok(digits[6:12], False)):
        return ID_CARD
    if 16 <= n <= 19:
        if single or card:
            return BANK_CARD
        return None
    if n >= 20 and single:
        return NUMBER
    return None


_MAX_DIGITS = 24  # no number masked here is longer, once its separators are gone


def _groups_of(chain: re.Match[str]) -> list[tuple[list[tuple[str, int, int]], bool]]:
    """Return the digit groups of a chain, as (digits, start, end) in the searched
    text, split into runs that may form numbers together, each with whether it is
    a number spelled out digit by digit.

    An X after a group, also after a space (``… 123 X``), belongs to it. Seven or
    more single digits parted by spaces or hyphens only (``1 3 8 - 1 2 3 4 …``) are one
    number spelled out; they are read on their own, never with the groups around
    them, so that a list (``1、2、3 … 10、11``) is not glued into one."""
    text, base = chain.group(0), chain.start()
    groups: list[tuple[str, int, int]] = []
    for tok in re.finditer(r"\d+|[Xx]", text):
        if tok.group(0).isdigit():
            groups.append((tok.group(0), base + tok.start(), base + tok.end()))
        elif groups:
            digits, start, _ = groups[-1]
            groups[-1] = (digits + tok.group(0), start, base + tok.end())
    runs: list[tuple[list[tuple[str, int, int]], bool]] = []
    current: list[tuple[str, int, int]] = []
    k = 0
    while k < len(groups):
        m = k
        while (m + 1 < len(groups) and len(groups[m][0]) == 1 and len(groups[m + 1][0]) == 1
               and text[groups[m][2] - base:groups[m + 1][1] - base].strip(" \t-") == ""):
            m += 1
        if m - k + 1 >= 7:
            if current:
                runs.append((current, False))
                current = []
            runs.append(([("".join(g[0] for g in groups[k:m + 1]), groups[k][1], groups[m][2])], True))
            k = m + 1
            continue
        current.append(groups[k])
        k += 1
    if current:
        runs.append((current, False))
    return runs


def _number_at(groups: list[tuple[str, int, int]], i: int, searched: str,
               spelled: bool = False) -> tuple[int, str] | None:
    """Return (last group, kind) of the longest number that starts at digit
    group ``i`` of a chain, or None. A number ``spelled`` out digit by digit is
    a phone or ID number at most."""
    first = groups[i][0]
    if spelled:
        before = searched[max(0, groups[i][1] - 12):groups[i][1]]
        kind = _classify([first], True, before, False, False)
        if kind in ("mobile", "landline", "local", ID_CARD):
            return i, kind
        # A digit too many before or after (1 3 8 1 2 3 4 5 6 7 8 9): the whole run goes.
        return (i, "mobile") if re.search(r"1[3-9]\d{9}", first) else None
    last, total = i, len(first)
    # Several groups make one number only if the first has 3 digits or more
    # (138 1234 5678, 0577 6588 7777, 330302 1990…) or is the country code.
    if len(first) >= 3 or first in ("86", "0086"):
        while last + 1 < len(groups) and total + len(groups[last + 1][0]) <= _MAX_DIGITS:
            last += 1
            total += len(groups[last][0])
    start = groups[i][1]
    fraction = i > 0 and searched[start - 1] == "."
    before = searched[max(0, start - 12):start]
    for j in range(last, i - 1, -1):
        if j > i and total < 7:
            break
        seps = [searched[groups[k][2]:groups[k + 1][1]] for k in range(i, j)]
        dotted = any("." in sep for sep in seps)
        # Commas, 、, | and line breaks also part lists of numbers: one number is typed with
        # one kind of them throughout (138，1234，5678), never mixed with other separators
        # (2026-000123、2025-004567 are two case ids), and begins with a group as short as
        # an area code (0527) or with a mobile's first digits (138, 1381234), not with a case
        # id's sequence (000123、2025).
        if any(c in _LIST_MARKS for sep in seps for c in sep) and (
                len({sep.strip(" \t") for sep in seps}) > 1
                or (len(groups[i][0]) > 4 and not re.fullmatch(r"1[3-9]\d{1,5}", groups[i][0]))):
            total -= len(groups[j][0])
            continue
        kind = _classify([g[0] for g in groups[i:j + 1]], i == 0, before, fraction, dotted)
        if kind is not None:
            return j, kind
        total -= len(groups[j][0])
    return None


def _email_start(norm: str, m: re.Match[str]) -> int:
    """Return where the e-mail address matched by ``m`` starts: without the words
    up to one such as 邮箱 glued before a Chinese name (邮箱张三@qq.com), and, when it is
    typed spaced out (zhang san @ example . com), with up to two more words of
    the name before it."""
    start = m.start()
    lead = _EMAIL_LEAD_RE.match(m.group(0))
    if lead:
        start += lead.end()
    if re.match(r"[^@#\s]*\s", m.group(0)):
        for _ in range(2):
            word = re.search(r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9][A-Za-z0-9._%+\-]*)[ \t]+$", norm[:start])
            if not word or word.group(1).lower() in _EMAIL_WORDS:
                break
            start = word.start(1)
    return start


def _kept(kind: str, digits: str, keep: set[str]) -> bool:
    """Return whether a phone number is one of the public numbers kept visible."""
    if digits in keep:
        return True
    if kind == "mobile":
        return digits[-11:] in keep
    if kind == "local":
        return any(k.startswith("0") and k.endswith(digits) for k in keep)
    return False


def mask_personal_data(text: str, keep: Iterable[str] = ()) -> Masked:
    """Return ``text`` with personal data masked, the rest as typed.

    ``keep`` lists public phone numbers (any punctuation) to leave visible,
    such as the numbers of the office that replies."""
    kept = {re.sub(r"\D", "", unicodedata.normalize("NFKC", k)) for k in keep}
    kept.discard("")
    norm, where = _normalise(text)
    spans: list[tuple[int, int, str]] = []  # (start, end) in ``norm``, marker
    counts: dict[str, int] = {}
    blanked = list(norm)

    def take(start: int, end: int, kind: str, marker: str) -> None:
        spans.append((start, end, marker))
        counts[kind] = counts.get(kind, 0) + 1
        blanked[start:end] = "\uffff" * (end - start)

    for m in _EMAIL_RE.finditer(norm):
        take(_email_start(norm, m), m.end(), EMAIL, MARKERS[EMAIL])
    review: set[str] = set()
    for m in _IM_RE.finditer("".join(blanked)):
        # "微信号 abc123", "QQ：wangwu", "QQ123456" are ids; "qqzxm04" in a file name is not
        # one, and "wechat today" may be a word: flagged only.
        word, between, ident = m.group(1), m.group(2), m.group(3)
        if word.isascii() and not between and not ident.isdigit():
            continue
        if re.search(r"[^ \t]", between) or re.search(r"[0-9_\-]", ident):
            take(m.start(3), m.end(3), IM_ID, MARKERS[IM_ID])
        else:
            review.add(IM_ID)

    searched = "".join(blanked)
    for chain in _CHAIN_RE.finditer(searched):
        for groups, spelled in _groups_of(chain):
            i = 0
            while i < len(groups):
                found = _number_at(groups, i, searched, spelled)
                if found is None:
                    i += 1
                    continue
                j, kind = found
                start, end = groups[i][1], groups[j][2]
                digits = "".join(g[0] for g in groups[i:j + 1])
                if kind in ("mobile", "landline", "local"):
                    if not _kept(kind, digits, kept):
                        if start > 0 and searched[start - 1] == "+":
                            start -= 1
                        if start > 0 and searched[start - 1] == "(" and ")" in searched[start:end]:
                            start -= 1
                        take(start, end, PHONE, MARKERS[PHONE] if kind == "mobile" else LANDLINE_MARKER)
                else:
                    take(start, end, kind, MARKERS[kind])
                i = j + 1

    if _ADDRESS_RE.search("".join(blanked)):
        review.add(ADDRESS)
    if not spans:
        return Masked(text, (), tuple(sorted(review)))
    out: list[str] = []
    pos = 0
    for start, end, marker in sorted(spans):
        o_start, o_end = where[start], where[end - 1] + 1
        if o_start < pos:  # two finds within one original character (NFKC expands some)
            pos = max(pos, o_end)
            continue
        out.append(text[pos:o_start])
        out.append(marker)
        pos = o_end
    out.append(text[pos:])
    return Masked("".join(out), tuple(sorted(counts.items())), tuple(sorted(review - set(counts))))
