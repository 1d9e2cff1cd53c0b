"""The catch-up verdict (``rules.catchup.decide``) as a table of named cases.

The rows come from what the executor did before the verdict moved here and from
the service tests in tests/sync (restart, failures, timing) that exercise it.
A meeting runs 10:00-11:00 with ``close`` at the start and ``open`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from rules.catchup import (
    Catchup,
    PhoneMark,
    Step,
    decide,
    last_own_step,
    span,
    wants_phone,
    wants_siblings,
)
from rules.model import ActionStatus, PhoneAction

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
M = timedelta(minutes=1)
LATE_AFTER = timedelta(seconds=60)

CLOSE = PhoneAction.close()
OPEN = PhoneAction.open()
NONE = PhoneAction.none()

#: what the switchboard reported after our start action
OURS = PhoneMark(version=3, changed_by="calref")


def start(status: ActionStatus = ActionStatus.PENDING, **kw: object) -> Step:
    step = Step("start", CLOSE, status, due_at=START, referral_end=END, order=1)
    return replace(step, **kw)  # type: ignore[arg-type]


def end(status: ActionStatus = ActionStatus.PENDING, **kw: object) -> Step:
    step = Step("end", OPEN, status, due_at=END, referral_end=END, order=2)
    return replace(step, **kw)  # type: ignore[arg-type]


def change(**kw: object) -> Step:
    step = Step(
        "change",
        PhoneAction.forward("0701234567"),
        ActionStatus.PENDING,
        due_at=START + 30 * M,
        referral_end=END,
        order=3,
    )
    return replace(step, **kw)  # type: ignore[arg-type]


DONE_START = start(ActionStatus.DONE, done_at=START, result=OURS)


@dataclass(frozen=True)
class Case:
    name: str
    step: Step
    siblings: tuple[Step, ...]
    phone: PhoneMark | None
    now: datetime
    kind: Catchup
    send: PhoneAction | None
    detail: str  # a part of the verdict's detail ("" : the detail is empty)


CASES = [
    Case("start on time", start(), (), None, START, Catchup.NOW, CLOSE, ""),
    Case(
        "start within the late margin is on time",
        start(),
        (),
        None,
        START + LATE_AFTER,
        Catchup.NOW,
        CLOSE,
        "",
    ),
    Case(
        "late start whose referral still runs is applied late",
        start(),
        (),
        None,
        START + 20 * M,
        Catchup.LATE,
        CLOSE,
        "late by 20m00s (catch-up)",
    ),
    Case(
        "missed start: its referral ended",
        start(),
        (),
        None,
        END + 2 * M,
        Catchup.MISSED,
        None,
        "its referral ended before it could run",
    ),
    Case(
        "start due exactly at its referral's end is missed",
        start(),
        (),
        None,
        END,
        Catchup.MISSED,
        None,
        "its referral ended",
    ),
    Case(
        "missed change: its referral ended",
        change(),
        (),
        None,
        END + M,
        Catchup.MISSED,
        None,
        "its referral ended",
    ),
    Case(
        "late change while the referral runs",
        change(),
        (),
        None,
        START + 45 * M,
        Catchup.LATE,
        PhoneAction.forward("0701234567"),
        "late by 15m00s",
    ),
    Case(
        "missed start-and-end pair: the end follows its missed start",
        end(),
        (start(ActionStatus.MISSED), end()),
        None,
        END + timedelta(hours=1),
        Catchup.MISSED,
        None,
        "its start was missed",
    ),
    Case(
        "end of a cancelled start is missed",
        end(),
        (start(ActionStatus.CANCELLED), end()),
        None,
        END,
        Catchup.MISSED,
        None,
        "its start was cancelled",
    ),
    Case(
        "end of a skipped start is missed",
        end(),
        (start(ActionStatus.SKIPPED), end()),
        None,
        END,
        Catchup.MISSED,
        None,
        "its start was skipped",
    ),
    Case(
        "end on time, nobody touched the phone",
        end(),
        (DONE_START, end()),
        OURS,
        END,
        Catchup.NOW,
        OPEN,
        "",
    ),
    Case(
        "missed end is applied now",
        end(),
        (DONE_START, end()),
        OURS,
        END + 45 * M,
        Catchup.LATE,
        OPEN,
        "late by 45m00s (catch-up)",
    ),
    Case(
        "a manual change after our start is kept",
        end(),
        (DONE_START, end()),
        PhoneMark(version=4, changed_by="mobile-app"),
        END,
        Catchup.KEPT,
        None,
        "phone changed by mobile-app after our start action (version 3 -> 4)",
    ),
    Case(
        "a change by nobody named is kept and says someone else",
        end(),
        (DONE_START, end()),
        PhoneMark(version=4, changed_by=""),
        END,
        Catchup.KEPT,
        None,
        "changed by someone else",
    ),
    Case(
        "a newer version by calref itself is not a manual change",
        end(),
        (DONE_START, end()),
        PhoneMark(version=5, changed_by="calref"),
        END,
        Catchup.NOW,
        OPEN,
        "",
    ),
    Case(
        "kept compares with our latest action, the change",
        end(),
        (
            DONE_START,
            change(
                status=ActionStatus.DONE,
                done_at=START + 30 * M,
                result=PhoneMark(version=4, changed_by="calref-b"),
            ),
            end(),
        ),
        PhoneMark(version=5, changed_by="calref"),
        END,
        Catchup.KEPT,
        None,
        "after our change action (version 4 -> 5)",
    ),
    Case(
        "soft referral end is always sent: its start sent nothing",
        end(),
        (start(ActionStatus.DONE, action=NONE, done_at=START), end()),
        None,
        END,
        Catchup.NOW,
        OPEN,
        "",
    ),
    Case(
        "end of a failed start is sent without a phone check",
        end(),
        (start(ActionStatus.FAILED), end()),
        None,
        END + 10 * M,
        Catchup.LATE,
        OPEN,
        "late by 10m00s",
    ),
    Case(
        "an end whose referral has no start action in this generation is sent",
        end(),
        (end(),),
        None,
        END,
        Catchup.NOW,
        OPEN,
        "",
    ),
    Case(
        "interrupted send is re-sent even after its referral ended",
        start(ActionStatus.SENDING),
        (),
        None,
        END + timedelta(hours=3),
        Catchup.RESEND,
        CLOSE,
        "re-sent after an interruption, same idempotency key",
    ),
    Case(
        "interrupted end is re-sent without a phone check",
        end(ActionStatus.SENDING),
        (),
        None,
        END + M,
        Catchup.RESEND,
        OPEN,
        "same idempotency key",
    ),
    Case(
        "action none sends nothing, even late",
        start(action=NONE),
        (),
        None,
        END + M,
        Catchup.NOTHING,
        None,
        "action none: nothing to send",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict(case: Case) -> None:
    siblings = list(case.siblings)
    # the table gives exactly what the verdict needs: siblings and phone only where asked for
    assert wants_siblings(case.step) or not siblings
    assert wants_phone(case.step, siblings) == (case.phone is not None)
    verdict = decide(case.step, siblings, case.phone, case.now, late_after=LATE_AFTER)
    assert (verdict.kind, verdict.send) == (case.kind, case.send)
    if case.detail:
        assert case.detail in verdict.detail
    else:
        assert verdict.detail == ""


def test_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_end_of_a_referral_we_acted_on_needs_the_phone() -> None:
    with pytest.raises(ValueError, match="phone"):
        decide(end(), [DONE_START, end()], None, END, late_after=LATE_AFTER)


def test_latest_own_step_is_the_last_done_and_breaks_ties_by_order() -> None:
    a = start(ActionStatus.DONE, done_at=START, result=OURS, order=7)
    b = change(status=ActionStatus.DONE, done_at=START, result=PhoneMark(4, "calref"), order=9)
    assert last_own_step([b, a]) is b
    later = replace(a, done_at=START + M)
    assert last_own_step([b, later]) is later
    undone = replace(b, done_at=None, due_at=START + 2 * M)  # falls back on when it was due
    assert last_own_step([undone, later]) is undone
    assert last_own_step([start(ActionStatus.DONE, done_at=START)]) is None


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=45), "45s"),
        (20 * M, "20m00s"),
        (timedelta(hours=2, minutes=5, seconds=9), "2h05m"),
    ],
)
def test_span(delta: timedelta, text: str) -> None:
    assert span(delta) == text
