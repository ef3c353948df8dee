"""Personal data in the bridge: mask it in public text, seal contact details at rest.

Git cannot forget, so phone numbers, e-mail addresses, ID-card numbers,
bank-card numbers and QQ/WeChat ids that a citizen types into a title, text,
district or rating comment are replaced by a marker (:mod:`generator.privacy`,
the one implementation, shared with the importer and the department tools)
before anything is written to git; the pull request is labelled for a
moderator, who also sees a flag for street addresses with house numbers. Contact
details for follow-up never go to git at all: they are sealed to an age
recipient and kept only in the bridge's database.
"""

from __future__ import annotations

import pyrage
from pyrage import x25519

from generator.privacy import (  # noqa: F401 - the bridge's public names
    ADDRESS, BANK_CARD, EMAIL, ID_CARD, IM_ID, MARKERS, NUMBER, PHONE, Masked, id_card_checksum_ok,
    luhn_ok, mask_personal_data,
)


class ContactSealer:
    """Seals contact details to an age X25519 recipient.

    The bridge holds only the public recipient: a stolen bridge database does
    not reveal contacts; the identity (private key) stays with the centre.
    """

    def __init__(self, recipient: str):
        self._recipient = x25519.Recipient.from_str(recipient)

    def seal(self, contact: str) -> bytes:
        """Return the contact encrypted to the recipient (age binary format)."""
        return pyrage.encrypt(contact.encode("utf-8"), [self._recipient])


def open_contact(sealed: bytes, identity: str) -> str:
    """Return a sealed contact decrypted with an age identity (AGE-SECRET-KEY-…)."""
    return pyrage.decrypt(sealed, [x25519.Identity.from_str(identity)]).decode("utf-8")


def new_key_pair() -> tuple[str, str]:
    """Return a fresh (identity, recipient) pair as age strings."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())
