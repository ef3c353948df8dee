"""Escalation records and department digests, for the scheduled run.

Time passes without commits: a stage becomes due soon, then overdue, then
crosses the rungs of the escalation ladder (reminder, notice, supervision
notice, accountability). The scheduled run records each rung a running clock
has crossed as an ``escalated`` event by ``system``, committed by the bot
account, once per rung per stage and due time, so that when a notice was
issued is itself in history. It can also write, for every department, a
digest of what is due soon and what is overdue.

:func:`due_escalations`, :func:`escalation_files` and :func:`department_digest`
are pure; :func:`run` is the edge that reads the archive and commits.

:func:`check_system_records` is the other side: the check calls it on every
case, and an ``escalated`` record is valid only if it is exactly what
:func:`due_escalations` and :func:`escalation_fields` give at its own time
(the case as it stood then, the rules in force), together with every lower
level that run would have written with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from generator import records as r
from generator.depttools import event_text
from generator.evaluate import CaseState, evaluate_case
from generator.validate import retracted
from generator.rules import Rules

LEVEL_ZH = {"reminder": "到期提醒", "notice": "抄告单", "supervision": "督办通知书",
            "accountability": "问责"}
LEVEL_EN = {"reminder": "reminder", "notice": "notice", "supervision": "supervision notice",
            "accountability": "accountability"}


@dataclass(frozen=True)
class Escalation:
    """One rung crossed by one running clock, not yet recorded."""

    case_id: str
    folder: str
    stage: str
    department: str
    level: str
    due_at: datetime
    crossed_at: datetime  # when the rung was reached


def _recorded(case: r.Case) -> set[tuple[str, str, str, datetime]]:
    """Return the rungs recorded so far (a record retracted by a correction is not)."""
    keys = set()
    gone = retracted(case.events)
    for e in case.events:
        if e.name in gone:
            continue
        if e.kind == "escalated":
            due = e.get("due_at")
            keys.add((e.get("stage"), e.get("department"), e.get("level"), due))
    return keys


def due_escalations(case: r.Case, state: CaseState, rules: Rules, now: datetime) -> list[Escalation]:
    """Return every rung the case's running clocks have crossed by ``now`` and
    that no ``escalated`` event records yet (same stage, department, level and
    due time), lowest rung first."""
    if state.status != "open":
        return []
    rule_set = rules.rule_set_for(case.petition.received_at)
    recorded = _recorded(case)
    out = []
    for s in state.stages:
        due = s.deadline.due_at
        if not s.current or due is None or s.department is None:
            continue
        rule = rule_set.stage(s.stage)
        if rule is None or not rule.escalates:
            continue
        for step in rule_set.escalation:
            at = rule_set.clock.shift(due, step.offset.amount, step.offset.unit)
            if at > now:
                break
            if (s.stage, s.department, step.level, due) in recorded:
                continue
            out.append(Escalation(case.id, case.folder, s.stage, s.department, step.level,
                                  due, at))
    return out


def escalation_fields(item: Escalation) -> dict[str, str]:
    """Return the fields of the ``escalated`` event recording ``item`` (after
    ``kind``, ``at`` and ``by``), in the order they are written."""
    return {"level": item.level, "stage": item.stage, "department": item.department,
            "due_at": item.due_at.isoformat(),
            "note": f"{LEVEL_ZH[item.level]}：{item.stage} 阶段于 "
                    f"{item.due_at:%Y-%m-%d %H:%M} 到期 / {LEVEL_EN[item.level]}: "
                    f"{item.stage} due {item.due_at:%Y-%m-%d %H:%M}"}


def escalation_files(items: Sequence[Escalation], now: datetime,
                     existing: Mapping[str, set[str]] | None = None) -> list[tuple[str, bytes]]:
    """Return (path, content) of the ``escalated`` events for ``items``, all
    stamped ``now`` (the moment the notice is issued), numbered when several
    share a second in one folder."""
    existing = existing or {}
    used: dict[str, set[str]] = {}
    files = []
    for item in items:
        names = used.setdefault(item.folder, set(existing.get(item.folder, ())))
        seq = 1
        while r.event_file_name("escalated", now, seq) in names:
            seq += 1
        name = r.event_file_name("escalated", now, seq)
        names.add(name)
        text = event_text("escalated", now, r.SYSTEM, escalation_fields(item))
        files.append((f"{item.folder}/{name}", text.encode("utf-8")))
    return files


# -- verifying what the system wrote ---------------------------------------------------

SYSTEM_HINT = ("`escalated` records are written only by the scheduled run, `wenzheng escalate`, "
               "from rules.yaml; remove this file and let the run record what is due "
               "(`wenzheng escalate --now <time> --commit`); if it is already merged, the centre "
               "retracts it with a `correction` (corrects: <this file>, retract: true, reason: ...)")


def check_system_records(report, case: r.Case, rules: Rules) -> None:
    """Report (into a :class:`generator.validate.Report`) every ``escalated``
    record of ``case`` that ``wenzheng escalate`` would not have written at its
    time: a stage that does not escalate, a department that does not hold the
    running clock, a due time the evaluator does not give, a level not yet
    crossed, a level already recorded, a level written without the lower ones
    the same run writes, or any other wording of the record. A retracted
    record is not judged: it does not count."""
    mine = [e for e in case.events if e.kind == "escalated"]
    if not mine:
        return
    if any(e.kind == "correction" for e in case.events):
        # A record the centre (or the bot) has retracted no longer counts.
        gone = retracted(case.events)
        mine = [e for e in mine if e.name not in gone]
    rule_set = rules.rule_set_for(case.petition.received_at)
    clock = rule_set.clock
    where = f"rule set {rule_set.name!r} of rules.yaml"
    ladder = {step.level: step for step in rule_set.escalation}
    escalating = [s.name for s in rule_set.stages if s.escalates]
    for at in sorted({e.at for e in mine}):
        # The case as the run saw it at ``at``: nothing later (a later
        # correction included), no escalation of this very run.
        then = replace(case, events=tuple(e for e in case.events if e.at < at or (
            e.at == at and e.kind != "escalated")))
        state = evaluate_case(then, rules, at)
        expected = due_escalations(then, state, rules, at)
        by_key = {(i.stage, i.department, i.level, i.due_at): i for i in expected}
        here = [e for e in mine if e.at == at]
        written = {(e.get("stage"), e.get("department"), e.get("level"), e.get("due_at")) for e in here}
        taken: set = set()
        for e in here:
            stage, dept, level, due = e.get("stage"), e.get("department"), e.get("level"), e.get("due_at")
            item = by_key.get((stage, dept, level, due))
            if item is not None and (stage, dept, level, due) in taken:
                report.add(e.name, ("level",), "escalation-duplicate",
                           f"{level} of the {stage} stage due {item.due_at.isoformat()} is written "
                           f"twice at {at.isoformat()}; the run records each level once per due "
                           f"time ({where})", SYSTEM_HINT)
                continue
            taken.add((stage, dept, level, due))
            if item is not None:
                lower = [i.level for i in expected if (i.stage, i.department, i.due_at) == (stage, dept, due)
                         and r.ESCALATION_LEVELS.index(i.level) < r.ESCALATION_LEVELS.index(level)
                         and (stage, dept, i.level, due) not in written]
                if lower:
                    report.add(e.name, ("level",), "escalation-skipped",
                               f"{level} is written without {', '.join(lower)}, which the same run "
                               f"writes with it at {at.isoformat()} ({where}: the ladder is climbed "
                               "one level at a time)", SYSTEM_HINT)
                want = escalation_fields(item)
                got = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.fields.items()}
                want["due_at"], got["due_at"] = item.due_at, due
                if got != want:
                    keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                    report.add(e.name, (keys[0],) if keys[0] in got else (), "escalation-content",
                               f"{', '.join(keys)} differ from what `wenzheng escalate` writes for "
                               f"this {level} ({where})", SYSTEM_HINT)
                continue
            rule = rule_set.stage(stage)
            if rule is None or not rule.escalates:
                report.add(e.name, ("stage",), "escalation-stage",
                           f"stage {stage!r} does not escalate: in {where} the escalation ladder "
                           f"applies to {', '.join(escalating) or 'no stage'} only", SYSTEM_HINT)
                continue
            running = [s for s in state.stages if s.stage == stage and s.current
                       and s.deadline.due_at is not None and s.department is not None]
            if state.status != "open" or not running:
                report.add(e.name, ("stage",), "escalation-no-clock",
                           f"at {at.isoformat()} no {stage} clock is running (the stage is done, "
                           f"stopped or ended, or the case is {state.status}), so under {where} "
                           "nothing escalates", SYSTEM_HINT)
                continue
            held = [s for s in running if s.department == dept]
            if not held:
                holders = ", ".join(sorted({str(s.department) for s in running}))
                report.add(e.name, ("department",), "escalation-department",
                           f"department {dept!r} does not hold the running {stage} clock at "
                           f"{at.isoformat()}; {holders} does ({where})", SYSTEM_HINT)
                continue
            right = held[0].deadline.due_at
            if due != right:
                shown = due.isoformat() if isinstance(due, datetime) else repr(due)
                report.add(e.name, ("due_at",), "escalation-due",
                           f"due_at {shown} is not the due time of the {stage} stage held by "
                           f"{dept}: the evaluator gives {right.isoformat()} under {where}",
                           SYSTEM_HINT)
                continue
            step = ladder.get(level)
            if step is None:
                report.add(e.name, ("level",), "escalation-level",
                           f"level {level!r} is not on the escalation ladder of {where} "
                           f"({', '.join(ladder)})", SYSTEM_HINT)
                continue
            crossed = clock.shift(right, step.offset.amount, step.offset.unit)
            if crossed > at:
                report.add(e.name, ("level",), "escalation-early",
                           f"{level} is crossed at {crossed.isoformat()} ({step.offset.text} from the "
                           f"due time {right.isoformat()}, {where}), after this record's time "
                           f"{at.isoformat()}", SYSTEM_HINT)
                continue
            earlier = [x.name for x in mine if x.at < at and (x.get("stage"), x.get("department"),
                                                              x.get("level"), x.get("due_at"))
                       == (stage, dept, level, due)]
            report.add(e.name, ("level",), "escalation-duplicate",
                       f"{level} of the {stage} stage due {right.isoformat()} is already recorded"
                       + (f" in {earlier[0]}" if earlier else "")
                       + f"; the run records each level once per due time ({where})", SYSTEM_HINT)


def department_digest(department: r.Department, states: Iterable[CaseState],
                      now: datetime) -> str:
    """Return a department's digest (Markdown, Chinese first): its running
    clocks that are overdue or due soon, most urgent first."""
    overdue, soon = [], []
    for state in states:
        for s in state.stages:
            if s.department != department.id or not s.current or s.deadline.due_at is None:
                continue
            if s.overdue_level == "overdue":
                overdue.append((s.deadline.due_at, state.id, s))
            elif s.overdue_level == "due_soon":
                soon.append((s.deadline.due_at, state.id, s))
    overdue.sort(key=lambda x: (x[0], x[1]))
    soon.sort(key=lambda x: (x[0], x[1]))
    lines = [f"# {department.name.zh} 待办摘要 / {department.name.en} digest", "",
             f"截至 / As of {now.isoformat()}", ""]
    for title, rows in (("已逾期 / Overdue", overdue), ("即将到期 / Due soon", soon)):
        lines += [f"## {title} ({len(rows)})", ""]
        if not rows:
            lines += ["无 / None", ""]
            continue
        lines += ["| 编号 ID | 阶段 Stage | 到期 Due | 督办 Escalation |", "|---|---|---|---|"]
        for due, pid, s in rows:
            level = f"{LEVEL_ZH[s.escalation]} / {LEVEL_EN[s.escalation]}" if s.escalation else "—"
            lines.append(f"| {pid} | {s.stage} | {due:%Y-%m-%d %H:%M} | {level} |")
        lines.append("")
    return "\n".join(lines)


# -- the edge -------------------------------------------------------------------------


@dataclass
class EscalationRun:
    escalations: list[Escalation]
    files: list[tuple[str, bytes]]
    commit: str | None
    digests: dict[str, str]


def run(repo: str | Path, now: datetime, *, branch: str = "main", commit: bool = False,
        account: str | None = None, digest_dir: Path | None = None) -> EscalationRun:
    """Evaluate every case of ``branch`` as of ``now``; with ``commit`` record the
    crossed rungs in one commit by the bot ``account`` on the branch; with
    ``digest_dir`` write one digest per department there."""
    from generator.check import check_archive
    from generator.gitio import (ArchiveWriter, GitError, advance_worktrees, git, rev_parse, sign_commit,
                                  signing_on)

    archive = check_archive(repo, branch)
    if archive.departments is None or archive.rules is None:
        raise GitError("departments.yaml or rules.yaml has errors; run `wenzheng check` first")
    states = {pid: evaluate_case(case, archive.rules, now) for pid, case in archive.cases.items()}
    items: list[Escalation] = []
    for pid in sorted(archive.cases):
        items += due_escalations(archive.cases[pid], states[pid], archive.rules, now)
    existing = {archive.cases[pid].folder: {e.name for e in archive.cases[pid].events}
                for pid in {i.case_id for i in items}}
    at = now.astimezone(archive.rules.tz).replace(microsecond=0)
    files = escalation_files(items, at, existing)
    made = None
    if commit and files:
        bot = account or (archive.departments.bot_accounts[0]
                          if archive.departments.bot_accounts else None)
        if bot is None or archive.departments.actor_of(bot) != r.SYSTEM:
            raise GitError(f"{bot!r} is not a bot account in departments.yaml (bot_accounts)")
        ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        old = rev_parse(repo, ref)
        with ArchiveWriter(repo, branch) as writer:
            made = writer.commit(files, f"Escalations as of {at.isoformat()} ({len(files)} step(s))",
                                 int(at.astimezone(timezone.utc).timestamp()),
                                 f"{bot} <{bot}@localhost>")
        if signing_on(repo):  # the bot signs with its key (docs/audit.md)
            signed = sign_commit(repo, made)
            git(repo, "update-ref", f"refs/heads/{branch}", signed, made)
            made = signed
        # a clerk's checkout of the branch follows, so a later commit there
        # does not record the new files as deleted
        stuck = advance_worktrees(repo, ref, old, made)
        if stuck:
            raise GitError(stuck[0].message + "; " + stuck[0].hint)
    digests = {}
    for dept in archive.departments.departments.values():
        digests[dept.id] = department_digest(dept, states.values(), now)
    if digest_dir is not None:
        digest_dir.mkdir(parents=True, exist_ok=True)
        for dept_id, text in digests.items():
            (digest_dir / f"{dept_id}.md").write_text(text, encoding="utf-8")
    return EscalationRun(items, files, made, digests)
