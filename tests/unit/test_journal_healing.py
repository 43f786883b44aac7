"""The healing policy (pure, on a fake clock), the crash hook's parsing, and SQLite riding out a lock
held by another process (real SQLite, a real second process)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from docmill.config import RunConfig
from docmill.errors import ConfigError, JournalError
from docmill.journal.base import Query, RunInfo
from docmill.journal.faults import CrashPoint, NoCrash, crash_point
from docmill.journal.healing import Backoff, Healer, duration
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome, Status
from docmill.settings import SettingError
from docmill.testing import FakeClock, ref_for


class Blip(Exception):
    """A lost connection, as far as these tests' healer is concerned."""


class Flaky:
    """An operation that fails ``failures`` times with Blip, then returns "ok"."""

    def __init__(self, failures: int, clock: FakeClock, cost: float = 0.0) -> None:
        self.failures, self.clock, self.cost = failures, clock, cost
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.clock.advance(self.cost)  # time spent in the failed call counts against the budget
        if self.calls <= self.failures:
            raise Blip(f"connection lost #{self.calls}\nsecond line")
        return "ok"


def healer(clock: FakeClock, mends: list[int], budget: float = 120.0) -> Healer:
    return Healer(
        lambda exc: isinstance(exc, Blip),
        lambda: mends.append(1),
        what="test connection",
        policy=Backoff(budget=budget),
        clock=clock,
    )


# -- the policy --------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_ends_with_the_budget() -> None:
    policy = Backoff(budget=20.0, initial=0.25, maximum=8.0)
    assert [policy.delay(n, 0.0) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.delay(9, 17.5) == 2.5  # never sleeps past the budget
    assert policy.delay(3, 20.0) is None and policy.delay(1, 25.0) is None


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(SettingError, match="reconnect_seconds"):
        Backoff(budget=-1)
    with pytest.raises(SettingError, match="initial"):
        Backoff(initial=0)


def test_a_lost_connection_is_mended_and_the_operation_replayed(caplog: pytest.LogCaptureFixture) -> None:
    clock, mends = FakeClock(), list[int]()
    heal = healer(clock, mends)
    op = Flaky(3, clock)
    with caplog.at_level(logging.WARNING, logger="docmill.journal"):
        assert heal.call(op, "cannot record outcomes") == "ok"
    assert op.calls == 4 and len(mends) == 3 and clock.sleeps == [0.25, 0.5, 1.0]
    assert heal.healed == 1
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "test connection: connection lost #1; retrying for up to 2 min"
    assert lines[1] == "test connection: working again after 1.8 s (3 attempts failed)"


def test_the_budget_bounds_the_retrying_and_the_error_is_one_line() -> None:
    clock, mends = FakeClock(), list[int]()
    op = Flaky(10**6, clock, cost=1.0)
    with pytest.raises(JournalError) as caught:
        healer(clock, mends, budget=30.0).call(op, "cannot record outcomes")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot record outcomes: test connection: connection lost #")
    assert "; gave up after 31 s of retrying (8 attempts)" in message  # the last try began at 30 s
    assert sum(clock.sleeps) + (op.calls - 1) * 1.0 == pytest.approx(30.0)
    assert isinstance(caught.value.__cause__, Blip)


def test_after_giving_up_each_operation_gets_one_attempt_until_one_succeeds() -> None:
    clock, mends = FakeClock(), list[int]()
    heal = healer(clock, mends, budget=10.0)
    with pytest.raises(JournalError):
        heal.call(Flaky(10**6, clock), "record")
    slept = len(clock.sleeps)
    with pytest.raises(
        JournalError, match=r"^end the run: .*; gave up after 1\d s of retrying \(\d+ attempts\)$"
    ):
        heal.call(Flaky(10**6, clock), "end the run")  # the run ending: no second wait, the first verdict
    assert len(clock.sleeps) == slept
    assert heal.call(Flaky(0, clock), "query") == "ok" and not heal.gave_up  # mended first, then fine
    assert heal.call(Flaky(1, clock), "query") == "ok" and len(clock.sleeps) == slept + 1


def test_other_errors_pass_through_at_once() -> None:
    clock, mends = FakeClock(), list[int]()

    def broken() -> str:
        raise ValueError("syntax error")

    with pytest.raises(ValueError, match="syntax error"):
        healer(clock, mends).call(broken, "query")
    assert clock.sleeps == [] and mends == []


def test_a_failed_mend_is_one_more_failed_attempt() -> None:
    clock, mends = FakeClock(), list[int]()
    refused = iter([True, True, False])

    def mend() -> None:
        mends.append(1)
        if next(refused):
            raise Blip("connection refused")

    heal = Healer(lambda e: isinstance(e, Blip), mend, what="db", policy=Backoff(), clock=clock)
    assert heal.call(Flaky(1, clock), "query") == "ok"
    assert len(mends) == 3 and clock.sleeps == [0.25, 0.5, 1.0]


def test_a_zero_budget_gives_up_at_the_first_loss() -> None:
    clock, mends = FakeClock(), list[int]()
    with pytest.raises(JournalError, match=r"gave up after 0.0 s of retrying \(1 attempt\)"):
        healer(clock, mends, budget=0.0).call(Flaky(1, clock), "query")
    assert mends == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "0.2 s"), (4.5, "4.5 s"), (42, "42 s"), (120, "2 min"), (90, "1 min 30 s")]
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_budget_is_a_journal_setting() -> None:
    assert RunConfig.from_mapping({"journal": {"reconnect_seconds": 5}}).journal.reconnect_seconds == 5
    assert RunConfig.from_mapping({"reconnect_seconds": 7}).journal.reconnect_seconds == 7
    with pytest.raises(ConfigError, match=r"journal.reconnect_seconds: invalid value -1"):
        RunConfig.from_mapping({"journal": {"reconnect_seconds": -1}})


# -- the crash hook ---------------------------------------------------------------------------------


def test_the_crash_hook_is_off_unless_asked_and_refuses_a_bad_spec() -> None:
    assert isinstance(crash_point({}), NoCrash)
    point = crash_point({"DOCMILL_CRASH_AT": "after-commit:3"})
    assert isinstance(point, CrashPoint) and (point.point, point.k) == ("after-commit", 3)
    for bad in ("during-commit:1", "before-commit:0", "before-commit", "before-commit:x"):
        with pytest.raises(ConfigError, match="DOCMILL_CRASH_AT"):
            crash_point({"DOCMILL_CRASH_AT": bad})


def test_the_crash_hook_counts_commits_and_spares_the_others() -> None:
    point = CrashPoint("before-commit", 3)
    for _ in range(2):
        point.before()
        point.after()
    assert point.commits == 2  # still alive: the kill is at the third


# -- SQLite: a lock held by another process ----------------------------------------------------------


HOLD = textwrap.dedent(
    """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
    """
)


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process takes the journal's write lock for ``seconds``; returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def outcome(i: int) -> Outcome:
    return Outcome(ref_for(i), Status.OK, f"sha{i}", {"label": "x"})


def test_sqlite_waits_out_a_lock_held_longer_than_its_busy_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path, reconnect_seconds=30) as journal:
        run = journal.begin_run(RunInfo("/src", "fp", "sequential", 1))
        holder = hold_lock(path, 3.0)  # SQLite itself waits 2 s: the healer carries on past it
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="docmill.journal"):
            recorded = journal.record([outcome(1), outcome(2)], run_id=run, source="/src", fingerprint="fp")
        waited = time.monotonic() - began
        assert holder.wait(5) == 0
        assert [o.status for o in recorded] == [Status.OK, Status.OK] and journal.count(Query()) == 2
    assert 2.5 < waited < 10, waited
    assert any(
        "is locked: database is locked; retrying for up to 30 s" in r.getMessage() for r in caplog.records
    )


def test_sqlite_gives_up_on_a_lock_held_past_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path, reconnect_seconds=0.5) as journal:
        holder = hold_lock(path, 3.0)
        with pytest.raises(JournalError, match=r"cannot write the journal: .* gave up after 0\.\d s"):
            journal.begin_run(RunInfo("/src", "fp", "sequential", 1))
        holder.wait(5)
        assert journal.begin_run(RunInfo("/src", "fp", "sequential", 1)) == 1  # the lock gone: it works
