"""A builder of plausible pull-request histories, with planted violations.

Each commit is one merged pull request by one forge account: the bridge adds
a batch of petitions, the centre assigns them, each department accepts and
answers its own, the centre closes, the bridge records the citizens' ratings.
Written straight into a pack (gitio.ArchiveWriter) so 10,000 petitions take seconds.
The record texts are written here by hand, independently of the code under
test; the planted violations are listed with the commit, file and rule an
audit must report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from generator.gitio import ArchiveWriter, git, init_repo

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
DEPTS = {
    "housing": "mh-housing", "transport": "mh-transport", "urban-management": "mh-urban",
    "environment": "mh-environment", "market-regulation": "mh-market",
    "human-resources": "mh-hrss", "education": "mh-education", "health": "mh-health",
    "public-security": "mh-police", "water": "mh-water",
}
CENTRE, BRIDGE = "mh-centre-duty", "wenzheng-bridge"
ROUND = timedelta(days=1)
PLANTS = ("edit-reply", "delete-petition", "backdate-reply", "reply-for-other",
          "reply-held-elsewhere", "own-extension", "forged-feedback")


@dataclass(frozen=True)
class Planted:
    name: str
    account: str
    path: str
    code: str
    message_marker: str  # the commit message, to find the commit id afterwards


def _who(account: str) -> str:
    return f"{account} <{account}@users.noreply.github.com>"


def _t(at: datetime) -> str:
    return at.astimezone(CST).isoformat()


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _event(kind: str, at: datetime, by: str, **fields: str) -> bytes:
    lines = [f"kind: {kind}", f"at: {_t(at)}", f"by: {by}"]
    lines += [f"{k}: {v}" for k, v in fields.items()]
    return ("\n".join(lines) + "\n").encode()


def _petition(pid: str, at: datetime) -> bytes:
    return (f"id: '{pid}'\nreceived_at: {_t(at)}\nchannel: web\ncategory: complaint\n"
            f"title: 路灯损坏第{pid[-4:]}号\nbody: |\n  小区门口路灯损坏，请尽快修复。\n"
            "petitioner: {display_name: 网友 a1}\n").encode()


class History:
    """Writes the history; keeps what each folder holds for the planted edits."""

    def __init__(self, repo: Path, fi: ArchiveWriter):
        self.repo, self.fi = repo, fi
        self.commits = 0
        self.files: dict[str, bytes] = {}

    def commit(self, account: str, when: datetime, files: list[tuple[str, bytes]],
               message: str, deletes: tuple[str, ...] = ()) -> None:
        self.fi.commit(files, message, int(when.timestamp()), _who(account), deletes=deletes)
        self.files.update(files)
        self.commits += 1


def build_history(repo: Path, petitions: int, batch: int = 50, seed: int = 7,
                  plant: bool = True) -> tuple[int, list[Planted]]:
    """Write a history of ``petitions`` petitions into a new repository at
    ``repo``; return (commits written, the planted violations)."""
    init_repo(repo)
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=CST)
    depts = list(DEPTS)
    planted: list[Planted] = []
    folders: dict[int, str] = {}
    holder: dict[int, str] = {}
    with ArchiveWriter(repo, "main") as fi:
        h = History(repo, fi)
        config = [(name, (ROOT / name).read_bytes()) for name in ("departments.yaml", "rules.yaml")]
        h.commit(CENTRE, start - timedelta(days=1), config, "Found the archive")
        rounds = (petitions + batch - 1) // batch
        special = {name: 3 + i for i, name in enumerate(PLANTS)} if plant else {}
        held_back: dict[int, datetime] = {}
        i = -1
        while i < rounds + 6 or held_back:
            i += 1
            t = start + i * ROUND
            # 1. the bridge adds this round's petitions
            lo, hi = i * batch, min((i + 1) * batch, petitions)
            if lo < hi:
                files = []
                for n in range(lo, hi):
                    pid = f"2026-{n + 1:06d}"
                    received = t + timedelta(seconds=n - lo)  # at most 199 s: before the commit
                    folders[n] = f"petitions/{received:%Y}/{received:%m}/{pid}"
                    files.append((f"{folders[n]}/petition.yaml", _petition(pid, received)))
                h.commit(BRIDGE, t + timedelta(minutes=4), files, f"Add petitions (round {i})")
            # 2. the centre assigns last round's
            cases = _round(i - 1, batch, petitions)
            if cases:
                at = t + timedelta(minutes=5)
                files = []
                for n in cases:
                    holder[n] = rng.choice(depts)
                    files.append((f"{folders[n]}/{_stamp(at)}-assigned.yaml",
                                  _event("assigned", at, "centre", to=holder[n])))
                h.commit(CENTRE, at + timedelta(minutes=1), files, f"Assign (round {i - 1})")
            # 3. departments accept, 4. and answer, each in its own pull request
            for kind, offset, back in (("accepted", 10, 2), ("reply", 20, 3)):
                cases = _round(i - back, batch, petitions)
                at = t + timedelta(minutes=offset)
                for dept in depts:
                    mine = [n for n in cases if holder[n] == dept]
                    files = []
                    for n in mine:
                        if kind == "reply" and n == special.get("backdate-reply", -1) * batch:
                            held_back[n] = at  # answered days later, backdated: planted below
                            continue
                        fields = ({"final": "true", "resolution": "resolved", "body": "已修复。"}
                                  if kind == "reply" else {})
                        files.append((f"{folders[n]}/{_stamp(at)}-{kind}.yaml",
                                      _event(kind, at, dept, **fields)))
                    if files:
                        h.commit(DEPTS[dept], at + timedelta(minutes=1), files,
                                 f"{kind} by {dept} (round {i - back})")
            # 5. the centre closes, 6. the bridge records ratings
            for kind, offset, back, account, by in (("closed", 40, 4, CENTRE, "centre"),
                                                    ("feedback", 50, 5, BRIDGE, "petitioner")):
                cases = [n for n in _round(i - back, batch, petitions) if n not in held_back]
                at = t + timedelta(minutes=offset)
                fields = {"rating": rng.choice(["satisfied", "basically_satisfied"])} \
                    if kind == "feedback" else {}
                files = [(f"{folders[n]}/{_stamp(at)}-{kind}.yaml", _event(kind, at, by, **fields))
                         for n in cases]
                if files:
                    h.commit(account, at + timedelta(minutes=1), files, f"{kind} (round {i - back})")
            if plant:
                planted += _plant(h, i, special, batch, folders, holder, held_back, t)
    return h.commits, planted


def _round(i: int, batch: int, petitions: int) -> list[int]:
    if i < 0:
        return []
    return list(range(i * batch, min((i + 1) * batch, petitions)))


def _other(dept: str) -> str:
    names = list(DEPTS)
    return names[(names.index(dept) + 1) % len(names)]


def _plant(h: History, i: int, special: dict[str, int], batch: int, folders: dict[int, str],
           holder: dict[int, str], held_back: dict[int, datetime], t: datetime) -> list[Planted]:
    """Add the planted violations that fall in round ``i``; return them."""
    out: list[Planted] = []
    at = t + timedelta(minutes=55)
    when = at + timedelta(minutes=1)

    def plant(name: str, account: str, path: str, content: bytes | None, code: str) -> None:
        marker = f"planted: {name}"
        if content is None:
            h.commit(account, when, [], marker, deletes=(path,))
        else:
            h.commit(account, when, [(path, content)], marker)
        out.append(Planted(name, account, path, code, marker))

    # cases whose whole life ended (feedback recorded) a round ago are safe to tamper with
    done = i - 6
    if done == special.get("edit-reply"):
        n = done * batch + 1
        path = next(p for p in h.files if p.startswith(folders[n] + "/") and p.endswith("-reply.yaml"))
        plant("edit-reply", DEPTS[holder[n]], path,
              h.files[path].replace("已修复。".encode(), "已于当日修复。".encode()), "append-only")
    if done == special.get("delete-petition"):
        n = done * batch + 2
        plant("delete-petition", CENTRE, f"{folders[n]}/petition.yaml", None, "append-only")
    if done == special.get("forged-feedback"):
        n = done * batch + 3  # a second rating, written by the department itself
        plant("forged-feedback", DEPTS[holder[n]], f"{folders[n]}/{_stamp(at)}-feedback.yaml",
              _event("feedback", at, "petitioner", rating="satisfied"), "not-your-account")
    # cases accepted this round and not yet answered
    fresh = i - 2
    if fresh == special.get("reply-for-other"):
        n = fresh * batch + 4  # the holder's reply, written by another department's account
        plant("reply-for-other", DEPTS[_other(holder[n])], f"{folders[n]}/{_stamp(at)}-reply.yaml",
              _event("reply", at, holder[n], final="false", body="正在处理。"), "not-your-account")
    if fresh == special.get("reply-held-elsewhere"):
        n = fresh * batch + 5
        other = _other(holder[n])
        plant("reply-held-elsewhere", DEPTS[other], f"{folders[n]}/{_stamp(at)}-reply.yaml",
              _event("reply", at, other, final="false", body="正在处理。"), "not-holder")
    if fresh == special.get("own-extension"):
        n = fresh * batch + 6
        dept = holder[n]
        req = f"{_stamp(at - timedelta(minutes=2))}-extension_requested.yaml"
        h.commit(DEPTS[dept], when - timedelta(minutes=2),
                 [(f"{folders[n]}/{req}", _event("extension_requested", at - timedelta(minutes=2),
                                                 dept, reason="需要协调", new_due="2026-04-30"))],
                 "extension requested (legitimate)")
        plant("own-extension", DEPTS[dept], f"{folders[n]}/{_stamp(at)}-extension_decided.yaml",
              _event("extension_decided", at, "centre", request=req, decision="approved",
                     new_due="2026-04-30"), "not-your-account")
    for n, due in list(held_back.items()):
        if t - due >= timedelta(days=5):  # five days late, stamped as if on time
            dept = holder[n]
            plant("backdate-reply", DEPTS[dept], f"{folders[n]}/{_stamp(due)}-reply.yaml",
                  _event("reply", due, dept, final="true", resolution="resolved", body="已修复。"),
                  "backdated")
            del held_back[n]
    return out


def commit_of(repo: Path, marker: str) -> str:
    """Return the commit whose message is ``marker``."""
    out = git(repo, "log", "--format=%H", "--fixed-strings", f"--grep={marker}", "main").decode()
    ids = out.split()
    assert len(ids) == 1, (marker, ids)
    return ids[0]
