"""Return Atom feeds, deterministic: every timestamp comes from the records."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable
from xml.sax.saxutils import escape


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom(feed_id: str, title: str, self_url: str, updated: datetime,
         entries: Iterable[tuple[str, str, str, datetime, str]]) -> str:
    """Return an Atom document; entries are (id, title, link, updated, summary)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">',
           f"<id>{escape(feed_id)}</id><title>{escape(title)}</title>",
           f'<link rel="self" href="{escape(self_url)}"/><updated>{_iso(updated)}</updated>',
           "<author><name>wenzheng</name></author>"]
    for eid, etitle, link, eupdated, summary in entries:
        out.append(f"<entry><id>{escape(eid)}</id><title>{escape(etitle)}</title>"
                   f'<link href="{escape(link)}"/><updated>{_iso(eupdated)}</updated>'
                   f"<summary>{escape(summary)}</summary></entry>")
    out.append("</feed>\n")
    return "\n".join(out)
