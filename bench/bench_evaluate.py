"""Time evaluate_case on many typical cases.

Run: PYTHONPATH=. python bench/bench_evaluate.py [N] [--freeze]
(--freeze calls gc.freeze() after building the cases, as a build should).

Typical cases: received over 2024-2026 at random times, assigned within the hour,
most accepted and answered, some transferred, some with a clarification stop or an
extension, most closed and rated. Building the cases is not timed.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.evaluate import evaluate_case  # noqa: E402
from generator.metrics import scorecards  # noqa: E402
from generator.records import Case, Event, Petition, Source, event_file_name  # noqa: E402
from generator.rules import read_rules  # noqa: E402

CST = timezone(timedelta(hours=8))
DEPTS = ["housing", "transport", "urban-management", "environment", "market-regulation", "education"]
SRC = Source("bench")


def ev(kind, at, by, **fields):
    return Event(kind, at, by, event_file_name(kind, at), fields, SRC)


def typical_case(i: int, rnd: random.Random) -> Case:
    received = datetime(2024, 1, 1, tzinfo=CST) + timedelta(minutes=rnd.randrange(3 * 365 * 24 * 60))
    dept = rnd.choice(DEPTS)
    at = received + timedelta(minutes=rnd.randrange(5, 90))
    events = [ev("assigned", at, "centre", to=dept)]
    if rnd.random() < 0.08:
        other = rnd.choice(DEPTS)
        at += timedelta(hours=rnd.randrange(1, 30))
        events.append(ev("transferred", at, "centre", to=other, reason="职责"))
        dept = other
    if rnd.random() < 0.95:
        at += timedelta(minutes=rnd.randrange(10, 300))
        events.append(ev("accepted", at, dept))
    if rnd.random() < 0.05:
        at += timedelta(hours=rnd.randrange(2, 30))
        events.append(ev("clarification_requested", at, dept, body="?"))
        at += timedelta(hours=rnd.randrange(2, 60))
        events.append(ev("clarification_received", at, "petitioner", body="!"))
    if rnd.random() < 0.06:
        at += timedelta(days=rnd.randrange(1, 5))
        req = ev("extension_requested", at, dept, reason="勘查", new_due=(at + timedelta(days=10)).date())
        events.append(req)
        at += timedelta(hours=3)
        events.append(ev("extension_decided", at, "centre", request=req.name,
                         decision=rnd.choice(["approved", "refused"]), new_due=(at + timedelta(days=10)).date()))
    if rnd.random() < 0.9:
        at += timedelta(hours=rnd.randrange(4, 24 * 9))
        events.append(ev("reply", at, dept, final=True, resolution="resolved", body="x"))
        if rnd.random() < 0.9:
            at += timedelta(hours=rnd.randrange(1, 48))
            events.append(ev("closed", at, "centre"))
            if rnd.random() < 0.6:
                events.append(ev("feedback", at + timedelta(hours=5), "petitioner",
                                 rating=rnd.choice(["satisfied", "basically_satisfied", "dissatisfied"])))
    pid = f"{received.year}-{i:06d}"
    p = Petition(pid, received, rnd.choice(["web", "phone", "app"]),
                 rnd.choice(["consultation", "complaint", "help", "suggestion", "report"]),
                 "t", "b", "网友", "东湖区", None, None, SRC)
    return Case(p, tuple(sorted(events, key=lambda e: e.at)), "x")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    rules = read_rules((Path(__file__).resolve().parent.parent / "rules.yaml").read_text(encoding="utf-8"),
                       cross_check=False)
    rnd = random.Random(42)
    cases = [typical_case(i, rnd) for i in range(n)]
    now = datetime(2026, 12, 31, 12, tzinfo=CST)
    if "--freeze" in sys.argv:
        # Move the inputs out of the collector's sight: with millions of live
        # objects, full collections otherwise dominate.
        gc.collect()
        gc.freeze()
    # CPU time as well as wall time: on a shared machine wall time is noisy.
    t0, c0 = time.perf_counter(), time.process_time()
    states = [evaluate_case(c, rules, now) for c in cases]
    t1, c1 = time.perf_counter(), time.process_time()
    cards = scorecards(states, rules, now)
    t2, c2 = time.perf_counter(), time.process_time()
    print(f"evaluate {n:,} cases: {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU "
          f"({n / (c1 - c0):,.0f} cases per CPU second)")
    print(f"scorecards over {n:,} states ({len(cards.departments)} department rows): "
          f"{t2 - t1:.2f} s wall, {c2 - c1:.2f} s CPU")


if __name__ == "__main__":
    main()
