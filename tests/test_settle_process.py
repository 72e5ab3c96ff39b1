"""Settlement in a process of its own (sim/settle_process.py): the same files,
byte for byte, as settling in the simulating process; its errors reach the
simulation; an abandoned run leaves no child behind."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

import transactive.sim.engine as engine
from transactive.errors import InputError
from transactive.settlement import verify_run
from transactive.settlement.ledger import SettlementError
from transactive.sim import Scenario, simulate
from transactive.sim.settle_process import SettlementProcess, _serve
from transactive.sim.settling import RunSettlement

SETTLED = ("journal.jsonl", "settlement.sqlite", "statements.parquet")


def _digests(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in SETTLED}


def test_a_run_settled_beside_the_simulation_writes_the_same_bytes(tmp_path, monkeypatch):
    scenario = Scenario.from_dict({"community": {"households": 12}, "time": {"days": 2},
                                   "settlement": {"granularity": "day"}})
    beside = simulate(scenario, run_dir=tmp_path / "beside")
    monkeypatch.setattr(engine, "SettlementProcess", RunSettlement)
    inline = simulate(scenario, run_dir=tmp_path / "inline")
    assert beside.settlement is not None
    assert inline.settlement is not None
    assert beside.settlement.reconciled
    assert beside.settlement.transfers > 0
    assert beside.settlement.figures() == inline.settlement.figures()
    assert _digests(tmp_path / "beside") == _digests(tmp_path / "inline")
    assert verify_run(tmp_path / "beside").is_ok


@pytest.mark.parametrize(("memfd", "slot_bytes"), [(True, None), (False, None), (True, 1)])
def test_more_days_than_slots_go_through_the_shared_slots_unchanged(tmp_path, monkeypatch,
                                                                    memfd, slot_bytes):
    """Days beyond the slots reuse them once the child has taken them;
    without memfd (other systems) the slots live in an unlinked file; a
    community too large for AHEAD_DAYS slots gets fewer (two at least)."""
    from transactive.sim import settle_process

    scenario = Scenario.from_dict({"community": {"households": 5},
                                   "time": {"days": settle_process.AHEAD_DAYS + 5},
                                   "settlement": {"granularity": "day"}})
    if not memfd:
        monkeypatch.delattr(settle_process.os, "memfd_create", raising=False)
    if slot_bytes is not None:
        monkeypatch.setattr(settle_process, "_SLOTS_BYTES", slot_bytes)
        assert settle_process._n_slots(6, 96) == 2
    beside = simulate(scenario, run_dir=tmp_path / "beside")
    monkeypatch.setattr(engine, "SettlementProcess", RunSettlement)
    inline = simulate(scenario, run_dir=tmp_path / "inline")
    assert beside.settlement is not None
    assert inline.settlement is not None
    assert beside.settlement.figures() == inline.settlement.figures()
    assert _digests(tmp_path / "beside") == _digests(tmp_path / "inline")


def test_a_child_that_dies_is_reported_at_the_next_day(tmp_path):
    from transactive.sim import settle_process

    scenario = Scenario.from_dict({"community": {"households": 3},
                                   "time": {"days": settle_process.AHEAD_DAYS + 2},
                                   "settlement": {"granularity": "day"}})
    run = engine._Run(scenario, scenario.time.timeline())
    proc = SettlementProcess(tmp_path / "run", 3, 96)
    proc._proc.kill()
    proc._proc.wait()

    def hand_over_every_day():
        for first in range(0, 96 * (settle_process.AHEAD_DAYS + 2), 96):
            day = run.day(first, first + 96)
            run.carbon.charge(day)
            proc.day(day, retail_price=run.retail[first:first + 96],
                     feed_in_price=run.feed_in[first:first + 96])

    with pytest.raises(SettlementError, match="settlement process"):
        hand_over_every_day()
    proc.abandon()


def test_the_childs_error_is_raised_in_the_simulation(tmp_path):
    (tmp_path / "settlement.sqlite").mkdir()  # the ledger cannot be opened there
    proc = SettlementProcess(tmp_path, 3, 4)
    with pytest.raises(InputError, match="field 'ledger': cannot open"):
        proc.close(np.zeros(3))
    assert proc._proc.poll() is not None


def test_abandon_stops_the_child(tmp_path):
    proc = SettlementProcess(tmp_path / "run", 3, 4)
    proc.abandon()
    assert proc._proc.returncode == 0


def test_the_child_answers_a_message_out_of_order_with_an_error(tmp_path):
    import io

    source = io.BytesIO(pickle.dumps(("day", None)))
    sink = io.BytesIO()
    assert _serve(source, sink) == 1
    kind, (pickled, text) = pickle.loads(sink.getvalue())
    assert kind == "error"
    assert "'day' before 'open'" in text
    assert isinstance(pickle.loads(pickled), SettlementError)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("granularity", ["interval", "day"])
def test_an_error_after_the_last_day_closes_the_settlement_and_leaves_nothing(
        tmp_path, monkeypatch, granularity):
    import gc

    def fail(*args, **kwargs):
        raise InputError("demand_response", "refused after the run")

    monkeypatch.setattr(engine, "_programs", fail)
    scenario = Scenario.from_dict({"community": {"households": 6}, "time": {"days": 1},
                                   "settlement": {"granularity": granularity}})
    with pytest.raises(InputError, match="refused after the run"):
        simulate(scenario, run_dir=tmp_path / "run")
    gc.collect()
    assert not (tmp_path / "run").exists()
