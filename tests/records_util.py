"""Small writers of record files for tests, independent of the code under test."""

from __future__ import annotations

FOLDER = "petitions/2026/11/2026-000001"


def petition(pid: str = "2026-000001", received_at: str = "2026-11-16T09:00:00+08:00",
             category: str = "complaint", channel: str = "web", extra: str = "") -> str:
    return (
        f"id: '{pid}'\n"
        f"received_at: {received_at}\n"
        f"channel: {channel}\n"
        f"category: {category}\n"
        "title: 小区门口路灯损坏三周无人修\n"
        "body: |\n  东湖区湖滨路12号小区门口的路灯坏了三周。\n"
        "petitioner: {display_name: 网友 ab12cd}\n"
        "location: {district: 东湖区}\n" + extra
    )


def event(kind: str, at: str, by: str, **fields: object) -> str:
    lines = [f"kind: {kind}", f"at: {at}", f"by: {by}"]
    for key, value in fields.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def stamp(at: str) -> str:
    """Return the UTC file stamp of an ISO time with a +08:00 offset (worked by hand
    in tests: 2026-11-16T10:00:00+08:00 is 20261116T020000Z)."""
    from datetime import datetime, timezone

    return datetime.fromisoformat(at).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def event_file(kind: str, at: str, by: str, folder: str = FOLDER, **fields: object) -> tuple[str, str]:
    return f"{folder}/{stamp(at)}-{kind}.yaml", event(kind, at, by, **fields)


def good_case(folder: str = FOLDER, pid: str = "2026-000001") -> dict[str, str]:
    """A petition assigned, accepted, answered, closed and rated."""
    files = {f"{folder}/petition.yaml": petition(pid)}
    for kind, at, by, fields in [
        ("assigned", "2026-11-16T09:30:00+08:00", "centre", {"to": "housing"}),
        ("accepted", "2026-11-16T10:00:00+08:00", "housing", {}),
        ("reply", "2026-11-18T15:00:00+08:00", "housing",
         {"final": True, "resolution": "resolved", "body": "已修复。"}),
        ("closed", "2026-11-19T09:00:00+08:00", "centre", {}),
        ("feedback", "2026-11-19T20:00:00+08:00", "petitioner", {"rating": "satisfied"}),
    ]:
        path, text = event_file(kind, at, by, folder, **fields)
        files[path] = text
    return files
