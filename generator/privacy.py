"""Masking personal data in public text, shared by the bridge and the importer.

Git cannot forget, so phone numbers, e-mail addresses, ID-card numbers (with a
valid GB 11643 check character) and bank-card numbers (Luhn-valid) in any text
bound for the archive are replaced by a marker before anything is written.
The bridge (:mod:`generator.bridge.privacy`) adds the sealing of contact
details; the importer needs only this masking half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PHONE = "phone"
EMAIL = "email"
ID_CARD = "id_card"
BANK_CARD = "bank_card"

MARKERS = {
    PHONE: "[手机号已隐去]",
    EMAIL: "[邮箱已隐去]",
    ID_CARD: "[身份证号已隐去]",
    BANK_CARD: "[银行卡号已隐去]",
}
LANDLINE_MARKER = "[电话号码已隐去]"

# Full-width digits, Latin letters and the at sign are folded to ASCII so that
# "１３８…" is caught like "138…"; Chinese full-width punctuation is kept.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)}
_FOLD.update({cp: cp - 0xFEE0 for cp in range(0xFF21, 0xFF3B)})
_FOLD.update({cp: cp - 0xFEE0 for cp in range(0xFF41, 0xFF5B)})
_FOLD[0xFF20] = ord("@")

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+\s*@\s*[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_ID_RE = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)
_DIGIT_RUN_RE = re.compile(r"(?<![0-9])\d(?:[ \-]?\d){15,18}(?![0-9])")
_MOBILE_RE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}(?![0-9])")
_LANDLINE_RE = re.compile(r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3}[ \-])\s?\d{7,8}(?![0-9])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


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
    """Text with personal data replaced, and how many of each kind were found."""

    text: str
    found: tuple[tuple[str, int], ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.found)


def mask_personal_data(text: str) -> Masked:
    """Return ``text`` with phone, e-mail, ID-card and bank-card numbers masked."""
    text = text.translate(_FOLD)
    counts: dict[str, int] = {}

    def replace_with(kind: str, marker: str):
        def sub(match: re.Match) -> str:
            counts[kind] = counts.get(kind, 0) + 1
            return marker
        return sub

    text = _EMAIL_RE.sub(replace_with(EMAIL, MARKERS[EMAIL]), text)

    def id_card(match: re.Match) -> str:
        if id_card_checksum_ok(match.group(0)):
            counts[ID_CARD] = counts.get(ID_CARD, 0) + 1
            return MARKERS[ID_CARD]
        return match.group(0)

    text = _ID_RE.sub(id_card, text)

    def bank_card(match: re.Match) -> str:
        digits = re.sub(r"[ \-]", "", match.group(0))
        if 16 <= len(digits) <= 19 and luhn_ok(digits):
            counts[BANK_CARD] = counts.get(BANK_CARD, 0) + 1
            return MARKERS[BANK_CARD]
        return match.group(0)

    text = _DIGIT_RUN_RE.sub(bank_card, text)
    text = _MOBILE_RE.sub(replace_with(PHONE, MARKERS[PHONE]), text)
    text = _LANDLINE_RE.sub(replace_with(PHONE, LANDLINE_MARKER), text)
    return Masked(text, tuple(sorted(counts.items())))
