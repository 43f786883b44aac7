"""The compact pipe format: everything an Outcome says survives the trip."""

from __future__ import annotations

import pickle

from docmill.errors import UnsupportedDocument
from docmill.executors.pool.outcomes import crashed, exit_reason
from docmill.executors.pool.wire import pack_items, pack_result, unpack_items, unpack_result
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.testing import make_refs


def _trip(value: object) -> object:
    return pickle.loads(pickle.dumps(value))


def test_refs_round_trip() -> None:
    items = list(enumerate(make_refs(3)))
    assert unpack_items(_trip(pack_items(items))) == items  # type: ignore[arg-type]


def test_outcomes_round_trip_with_their_parent_side_ref() -> None:
    ref = make_refs(1)[0]
    error = ErrorInfo.from_exception(UnsupportedDocument("no"))
    outcome = Outcome(ref, Status.FAILED, "ab", {"label": "x"}, error, 2, Timings(1.0, 2.5, "w-1"))
    assert unpack_result(_trip(pack_result(outcome)), ref) == outcome
    nested = (outcome, 0.25, 0.5)
    assert unpack_result(_trip(pack_result(nested)), ref) == nested


def test_other_results_pass_through() -> None:
    ref = make_refs(1)[0]
    assert unpack_result(_trip(pack_result({"a": 1})), ref) == {"a": 1}


def test_crash_reasons_name_the_signal_or_the_code() -> None:
    assert exit_reason(-11) == "worker killed by SIGSEGV"
    assert exit_reason(7) == "worker exited with code 7"
    outcome = crashed(make_refs(1)[0], -9, started=1.0, now=2.0, worker="w")
    assert outcome.status is Status.CRASHED
    assert str(outcome.error) == "WorkerCrashedError: worker killed by SIGKILL"
