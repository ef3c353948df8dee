"""The files and pull-request text the bridge publishes, as pure functions.

Only masked public text, pseudonyms, ids and categories reach these: the
contact field never does.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import yaml

from generator.records import PETITION_FILE, event_file_name, petition_folder

from .providers import Change

CATEGORY_ZH = {"consultation": "咨询", "complaint": "投诉", "help": "求助", "suggestion": "建议", "report": "举报"}

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _RecordDumper(_Dumper):  # type: ignore[misc, valid-type]
    """Writes multi-line text as literal blocks so the archive reads well."""


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RecordDumper.add_representer(str, _str)


def dump_record(data: dict) -> bytes:
    """Return a record as UTF-8 YAML, keys in the order given."""
    return yaml.dump(data, Dumper=_RecordDumper, allow_unicode=True, sort_keys=False,
                     default_flow_style=False, width=1000).encode("utf-8")


def pseudonym(secret: bytes, form_key: str) -> str:
    """Return a stable pseudonym for one submission; it cannot be linked to the
    citizen's contact or to their other petitions."""
    digest = hmac.new(secret, f"pseudonym|{form_key}".encode(), hashlib.sha256).digest()
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    n = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(alphabet))
        chars.append(alphabet[r])
    return "".join(chars)


def petition_record(petition_id: str, received_at: datetime, category: str, title: str, body: str,
                    display_name: str, district: str | None) -> tuple[str, bytes]:
    """Return the path and content of a web petition's ``petition.yaml``."""
    data: dict = {
        "id": petition_id,
        "received_at": received_at.isoformat(),
        "channel": "web",
        "category": category,
        "title": title,
        "body": body,
        "petitioner": {"display_name": display_name},
    }
    if district:
        data["location"] = {"district": district}
    return f"{petition_folder(petition_id, received_at)}/{PETITION_FILE}", dump_record(data)


def renumbered_petition(content: bytes, petition_id: str) -> tuple[str, bytes]:
    """Return the path and content of a web petition written by
    :func:`petition_record`, given a new id (nothing else changes)."""
    data = yaml.safe_load(content.decode("utf-8"))
    data["id"] = petition_id
    received_at = datetime.fromisoformat(data["received_at"])
    return f"{petition_folder(petition_id, received_at)}/{PETITION_FILE}", dump_record(data)


def feedback_record(folder: str, at: datetime, rating: str, comment: str | None,
                    existing: list[str]) -> tuple[str, bytes]:
    """Return the path and content of a feedback event, numbered past any
    feedback file of the same second already in the folder."""
    seq = 1
    while event_file_name("feedback", at, seq) in existing:
        seq += 1
    data: dict = {"kind": "feedback", "at": at.isoformat(), "by": "petitioner", "rating": rating}
    if comment:
        data["comment"] = comment
    return f"{folder}/{event_file_name('feedback', at, seq)}", dump_record(data)


def batch_change(branch: str, items, label: str, moderation_label: str) -> Change:
    """Return the commit and pull request for a batch of outbox items."""
    petitions = [i for i in items if i.kind == "petition"]
    ratings = [i for i in items if i.kind == "feedback"]
    flagged = [i for i in items if i.flags]
    first = items[0].petition_id
    if len(items) == 1 and petitions:
        title = f"网络诉求 {first}：{petitions[0].title[:60]} / Web petition {first}"
    elif len(items) == 1:
        title = f"诉求 {first} 的满意度评价 / Rating of petition {first}"
    else:
        title = (f"网络诉求 {len(petitions)} 件、评价 {len(ratings)} 件（{first} 起）"
                 f" / {len(petitions)} web petitions, {len(ratings)} ratings from {first}")
    lines = ["由问政桥接服务自动提交。联系方式不进入仓库；文中的个人信息已隐去。",
             "Submitted by the Wenzheng bridge. Contact details never enter the repository; "
             "personal data in the text has been masked.", ""]
    for item in items:
        what = "评价 rating" if item.kind == "feedback" else f"{CATEGORY_ZH.get(item.category, item.category)} {item.category}"
        note = f" — 需审核 needs moderation: {', '.join(item.flags)}" if item.flags else ""
        lines.append(f"- `{item.petition_id}` {what}: `{item.path}`{note}")
    labels = (label,) + ((moderation_label,) if flagged else ())
    files = tuple((i.path, i.content) for i in items)
    message = f"bridge: {title}"
    return Change(branch, files, message, title, "\n".join(lines) + "\n", labels)
