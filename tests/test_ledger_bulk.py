"""The ledger's bulk path: transfers as columns (TransferBatch), planned and
inserted in one pass, with the same reports, rows, hash chain and state hash as
transfer by transfer; the canonical bytes written in bulk; the journal's
``transfers`` records as columns (and the older rows still read); the two
integrity checks on ledgers of either schema."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transactive.errors import InputError
from transactive.settlement import (
    Account,
    AccountKind,
    Journal,
    Ledger,
    PostReport,
    PostResult,
    SettlementError,
    Status,
    Transfer,
    Unit,
    read_journal,
    replay_journal,
    verify_journal,
)
from transactive.settlement import ledger as ledger_module
from transactive.settlement._integrity import transfer_bytes, transfer_lines
from transactive.settlement._signing import canonical
from transactive.settlement.journal import _transfers_body, transfer_batch
from transactive.settlement.ledger import TransferBatch, state_hash_of
from transactive.settlement.transfers import (
    ACCOUNTS,
    FLOWS,
    check_sums,
    transfer_batch_from_sums,
    transfers_from_sums,
)

MONEY = AccountKind.PARTICIPANT_MONEY
ACCS = [Account("alice", MONEY, Unit.CENT), Account("bob", MONEY, Unit.CENT),
        Account("carol", MONEY, Unit.CENT),
        Account("prepaid", MONEY, Unit.CENT, allow_negative=False),
        Account("alice_wh", AccountKind.PARTICIPANT_ENERGY, Unit.WH)]


def _ledger(path: Path | str = ":memory:") -> Ledger:
    led = Ledger(path)
    assert led.create_accounts(ACCS).is_ok
    return led


def _batch(groups: list[list[Transfer]]) -> TransferBatch:
    """The groups as columns of numpy strings (as a caller with arrays has them)."""
    flat = [t for g in groups for t in g]
    cols = list(zip(*flat, strict=True)) if flat else [()] * 6
    return TransferBatch(np.array(cols[0], dtype=str), np.array(cols[1], dtype=str),
                         np.array(cols[2], dtype=str), np.array(cols[3], dtype=np.int64),
                         np.array(cols[4], dtype=str), np.array(cols[5], dtype=np.int64),
                         sizes=[len(g) for g in groups])


# ----------------------------------------------------------------- TransferBatch
def test_a_batch_is_a_sequence_of_transfers_in_groups() -> None:
    groups = [[Transfer("t1", "alice", "bob", 5, "x", 0), Transfer("t2", "bob", "carol", 2)],
              [], [Transfer("t3", "carol", "alice", 1, "y", 3)]]
    b = _batch(groups)
    assert len(b) == 3
    assert list(b) == [t for g in groups for t in g]
    assert b[-1] == groups[2][0]
    assert all(type(v) is str for v in b[0][:3])
    assert type(b[0].amount) is int
    assert b.groups() == groups
    assert TransferBatch.from_groups(groups).groups() == groups
    both = TransferBatch.concat([b, groups[0]])
    assert both.sizes.tolist() == [2, 0, 1, 2]
    assert TransferBatch.concat([b]) is b
    with pytest.raises(AttributeError):
        b.amount = np.ones(3, dtype=np.int64)
    assert not b.amount.flags.writeable


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"amount": [1.5, 2.0]}, "amount"),
    ({"amount": [1, True]}, "amount"),
    ({"interval": [[0, 0]]}, "interval"),
    ({"id": [["a"], ["b"]]}, "id"),
    ({"code": "xy"}, "code"),
    ({"debit": ["a"]}, "transfers"),
    ({"sizes": [1]}, "sizes"),
    ({"sizes": [3, -1]}, "sizes"),
])
def test_a_batch_of_bad_shape_is_an_input_error(kwargs: dict[str, Any], field: str) -> None:
    cols: dict[str, Any] = {"id": ["a", "b"], "debit": ["x", "y"], "credit": ["y", "x"],
                            "amount": [1, 2], "code": ["", ""], "interval": [0, 0]}
    sizes = kwargs.pop("sizes", None)
    cols.update(kwargs)
    with pytest.raises(InputError) as err:
        TransferBatch(**cols, sizes=sizes)
    assert err.value.field == field


@pytest.mark.parametrize(("bad", "field"), [
    (Transfer("x", "alice", "bob", 0), "amount"),
    (Transfer("x", "alice", "bob", -5), "amount"),
    (Transfer("x", "alice", "bob", 2**60), "amount"),
    (Transfer("", "alice", "bob", 1), "id"),
    (Transfer("x", "", "bob", 1), "debit"),
    (Transfer("x", "alice", "alice", 1), "credit"),
    (Transfer("x" * 201, "alice", "bob", 1), "id"),
    (Transfer("x", "alice", "bob", 1, "c" * 201), "code"),
    (Transfer("ok", "alice", "bob", 1), "transfers"),  # the same id twice
])
def test_a_bad_transfer_in_a_batch_is_refused_as_in_a_list(bad: Transfer, field: str) -> None:
    led = _ledger()
    before = led.state_hash()
    groups = [[Transfer("ok", "alice", "bob", 1)], [Transfer("ok2", "bob", "alice", 1), bad]]
    for posting in (groups, _batch(groups)):
        with pytest.raises(InputError) as err:
            led.post_batches(posting)
        assert (err.value.field, err.value.row) == (field, 2)
    assert led.state_hash() == before
    assert led.n_transfers == 0


def test_a_batch_with_values_of_the_wrong_type_is_refused() -> None:
    led = _ledger()
    b = TransferBatch(np.array(["t1", 7], dtype=object), ["alice", "bob"], ["bob", "alice"],
                      [1, 1], ["", ""], [0, 0])
    with pytest.raises(InputError) as err:
        led.post_batches(b)
    assert (err.value.field, err.value.row) == ("id", 1)


# ----------------------------------------------------------------- bulk path = row by row
transfer = st.tuples(st.sampled_from(["alice", "bob", "carol", "prepaid", "alice_wh", "ghost"]),
                     st.sampled_from(["alice", "bob", "carol", "prepaid", "alice_wh"]),
                     st.integers(1, 40), st.sampled_from(["a", "b"]), st.integers(-1, 3))


@settings(max_examples=60, deadline=None)
@given(postings=st.lists(st.lists(st.lists(transfer, min_size=0, max_size=4), min_size=1,
                                  max_size=4), min_size=1, max_size=6),
       retry=st.lists(st.integers(0, 10**6), max_size=3))
def test_batches_post_exactly_as_lists(postings: list[list[list[tuple[Any, ...]]]],
                                       retry: list[int]) -> None:
    """The same postings as lists of transfers and as batches (which take the bulk
    path when they can) give the same reports, balances and state hash; posting
    some again (EXISTS, or REFUSED if changed) goes row by row either way."""
    with _ledger() as as_lists, _ledger() as as_batches:
        as_batches.post([Transfer("fund", "alice", "prepaid", 50)])
        as_lists.post([Transfer("fund", "alice", "prepaid", 50)])
        counter, posted = 0, list[Transfer]()
        for groups in postings:
            built = []
            for g in groups:
                row = []
                for d, c, a, code, k in g:
                    if d != c:
                        counter += 1
                        row.append(Transfer(f"t{counter}", d, c, a, code, k))
                built.append(row)
            if retry and posted:
                t = posted[retry[0] % len(posted)]
                built.append([t] if retry[-1] % 2 else [t._replace(amount=t.amount + 1)])
            got = as_batches.post_batches(_batch(built))
            want = as_lists.post_batches(built)
            assert got == want
            assert [r.status for r in got.results] == [r.status for r in want.results]
            posted += [t for g in built for t in g]
        assert as_batches.balances() == as_lists.balances()
        assert as_batches.state_hash() == as_lists.state_hash()
        assert as_batches.check(full=True).is_ok
        assert as_batches.check().is_ok
        assert list(as_batches.transfers()) == list(as_lists.transfers())


def test_the_bulk_path_keeps_a_prepaid_account_at_zero_and_refuses_below() -> None:
    led = _ledger()
    ok = [[Transfer("f", "alice", "prepaid", 10), Transfer("s1", "prepaid", "bob", 6)],
          [Transfer("s2", "prepaid", "bob", 4)]]
    assert led.post_batches(_batch(ok)).count(Status.CREATED) == 3
    assert led.balance("prepaid") == 0
    report = led.post_batches(_batch([[Transfer("s3", "prepaid", "bob", 1)],
                                      [Transfer("g", "alice", "bob", 1)]]))
    assert [r.status for r in report.results] == [Status.REFUSED, Status.CREATED]
    assert report.results[0].reason.startswith("account prepaid forbids a negative balance")
    assert led.check().is_ok
    assert led.check(full=True).is_ok


def test_an_id_that_exists_sends_the_batch_row_by_row_and_nothing_half_done(
        tmp_path: Path) -> None:
    led = _ledger(tmp_path / "l.sqlite")
    led.post([Transfer("t2", "alice", "bob", 3)])
    groups = [[Transfer("t1", "alice", "bob", 1)], [Transfer("t2", "alice", "bob", 3),
                                                    Transfer("t3", "bob", "carol", 2)]]
    report = led.post_batches(_batch(groups))
    assert [r.status for r in report.results] == [Status.CREATED, Status.EXISTS,
                                                  Status.CREATED]
    assert [t.id for t in led.transfers()] == ["t2", "t1", "t3"]
    assert led.balances() == {"alice": -4, "alice_wh": 0, "bob": 2, "carol": 2, "prepaid": 0}
    assert led.check(full=True).is_ok


def test_accounts_are_read_by_id_or_in_one_scan_alike(tmp_path: Path) -> None:
    many = [Account(f"a{i}", MONEY, Unit.CENT) for i in range(300)]
    with Ledger(tmp_path / "l.sqlite") as led:
        led.create_accounts(many)
        few = [[Transfer("x1", "a1", "a2", 5)], [Transfer("x2", "a2", "a3", 1)]]
        assert led.post_batches(_batch(few)).is_ok  # 3 of 300: by id
        wide = [[Transfer(f"y{i}", f"a{i}", f"a{i + 1}", 1) for i in range(0, 298, 2)]]
        assert led.post_batches(_batch(wide)).is_ok  # most of them: one scan
        assert led.post_batches(_batch([[Transfer("z", "a1", "nobody", 1)]])).results[0] == \
            PostResult("z", Status.REFUSED, "unknown account nobody")
        assert led.check().is_ok
        assert led.check(full=True).is_ok


def test_a_uniform_report_is_the_report_of_its_results() -> None:
    lazy = PostReport.uniform(["a", "b"], Status.CREATED)
    made = PostReport([PostResult("a", Status.CREATED), PostResult("b", Status.CREATED)])
    assert (lazy.is_ok, lazy.count(Status.CREATED), lazy.count(Status.EXISTS), lazy.refused,
            len(lazy)) == (True, 2, 0, (), 2)
    assert lazy == made
    assert hash(lazy) == hash(made)
    assert repr(lazy) == repr(made)
    refused = PostReport.uniform(["a"], Status.REFUSED)
    assert not refused.is_ok
    assert refused.refused == (PostResult("a", Status.REFUSED),)
    assert PostReport.uniform([], Status.REFUSED).is_ok


# ----------------------------------------------------------------- canonical bytes
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(text, text, text, st.integers(-2**62, 2**62), text,
                               st.integers(-2**62, 2**62)), max_size=6))
def test_bytes_in_bulk_are_the_canonical_bytes(rows: list[tuple[Any, ...]]) -> None:
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * 6
    assert transfer_lines(*cols) == [transfer_bytes(r) for r in rows]
    assert [transfer_bytes(r) for r in rows] == [
        json.dumps(list(r), separators=(",", ":")).encode() for r in rows]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(text.filter(bool), text.filter(bool), text.filter(bool),
                               st.integers(1, 2**53), text, st.integers(-2**62, 2**62)),
                     max_size=5, unique_by=lambda r: r[0]),
       cut=st.integers(0, 5))
def test_a_transfers_record_body_is_canonical_json_of_its_columns(
        rows: list[tuple[Any, ...]], cut: int) -> None:
    rows = [r for r in rows if r[1] != r[2]]
    groups = [[Transfer(*r) for r in rows[:cut]], [Transfer(*r) for r in rows[cut:]]]
    batch = TransferBatch.from_groups(groups).check()
    ids, debits, credits, amounts, codes, intervals = (list(c) for c in zip(
        *[t for g in groups for t in g], strict=True)) if rows else [[]] * 6
    body = _transfers_body(batch)
    assert body == canonical({"amount": amounts, "code": codes, "credit": credits,
                              "debit": debits, "id": ids, "interval": intervals,
                              "sizes": batch.sizes.tolist()})
    assert transfer_batch(json.loads(body)).groups() == [g for g in groups]


# ----------------------------------------------------------------- journal records
def test_journals_with_rows_and_with_columns_verify_and_replay_alike(tmp_path: Path) -> None:
    """A journal begun by an older writer (transfers as rows) and continued by
    this one (columns) verifies, replays and recovers a ledger as one."""
    path = tmp_path / "j.jsonl"
    first = [[Transfer("t1", "alice", "bob", 5, "x", 0), Transfer("t2", "bob", "carol", 2)]]
    second = [[Transfer("t3", "carol", "alice", 1, "y", 3)], [Transfer("t4", "alice", "bob", 9)]]
    with Journal(path) as j:
        j.append_accounts(ACCS)
        j.append("transfers", {"groups": [[list(t) for t in g] for g in first]})  # old rows
        j.append_transfers(_batch(second))
    assert verify_journal(path).is_ok
    bodies = [r.body for r in read_journal(path) if r.kind == "transfers"]
    assert "groups" in bodies[0]
    assert bodies[1]["sizes"] == [1, 1]
    assert [transfer_batch(b).groups() for b in bodies] == [first, second]
    replayed = replay_journal(path)
    with _ledger() as direct:
        direct.post_batches(first)
        direct.post_batches(second)
        assert replayed.state_hash() == direct.state_hash()
    # a ledger that committed only the accounts catches up from the journal's tail
    with Ledger(tmp_path / "l.sqlite") as led:
        led.create_accounts(ACCS, cursor=1)
        replay_journal(path, led, after=led.cursor)
        assert led.state_hash() == replayed.state_hash()
        assert led.cursor == 3


@pytest.mark.parametrize(("body", "reason"), [
    ({"amount": [1], "code": [""], "credit": ["b"], "debit": ["a"], "id": ["t"],
      "interval": [0.5], "sizes": [1]}, "interval must be integers"),
    ({"amount": [1], "code": [""], "credit": ["b"], "debit": ["a"], "id": ["t"],
      "interval": [0]}, "unexpected keys"),
    ({"amount": [0], "code": [""], "credit": ["b"], "debit": ["a"], "id": ["t"],
      "interval": [0], "sizes": [1]}, "malformed transfers body"),
    ({"amount": [1, 1], "code": ["", ""], "credit": ["b", "b"], "debit": ["a", "a"],
      "id": ["t", "t"], "interval": [0, 0], "sizes": [2]}, "duplicate id 't'"),
    ({"amount": [1], "code": [""], "credit": ["b"], "debit": ["a"], "id": ["t"],
      "interval": [0], "sizes": [2]}, "sizes"),
])
def test_a_malformed_transfers_record_is_named(tmp_path: Path, body: dict[str, Any],
                                               reason: str) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.append_transfers([[Transfer("ok", "a", "b", 1)]])
        j.append("transfers", body)
    report = verify_journal(path)
    assert report.first_bad == 2
    assert reason in report.reason


def test_append_transfers_checks_before_it_writes(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl") as j:
        with pytest.raises(InputError, match="duplicate id"):
            j.append_transfers([[Transfer("d", "a", "b", 1)], [Transfer("d", "a", "b", 1)]])
        with pytest.raises(InputError, match="must be in 1"):
            j.append_transfers([[Transfer("x", "a", "b", 0)]])
        with pytest.raises(InputError, match="same account"):
            j.append_transfers(_batch([[Transfer("x", "a", "a", 1)]]))
        assert j.seq == 0


# ----------------------------------------------------------------- checks
def _old_schema(path: Path) -> None:
    """A ledger file as written before ``seq`` became SQLite's row id."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""
        CREATE TABLE ledger_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER
            NOT NULL, seq BIGINT NOT NULL, head TEXT NOT NULL, cursor BIGINT NOT NULL);
        CREATE TABLE accounts (id TEXT PRIMARY KEY, kind TEXT NOT NULL, unit TEXT NOT NULL,
            allow_negative INTEGER NOT NULL CHECK (allow_negative IN (0, 1)),
            debits BIGINT NOT NULL DEFAULT 0, credits BIGINT NOT NULL DEFAULT 0,
            CHECK (allow_negative = 1 OR credits >= debits));
        CREATE TABLE transfers (seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            debit TEXT NOT NULL REFERENCES accounts (id),
            credit TEXT NOT NULL REFERENCES accounts (id),
            amount BIGINT NOT NULL CHECK (amount > 0), code TEXT NOT NULL,
            interval_no BIGINT NOT NULL);""")
    db.close()


@pytest.mark.parametrize("schema", ["new", "old"])
def test_both_checks_agree_on_either_schema_and_walk_in_chunks(
        tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.sqlite"
    if schema == "old":
        _old_schema(path)
    rng = np.random.default_rng(5)
    names = ["alice", "bob", "carol"]
    groups = [[Transfer(f"t{g}.{k}", *rng.choice(names, 2, replace=False).tolist(),
                        int(rng.integers(1, 50)), "x", g) for k in range(3)] for g in range(20)]
    with _ledger(path) as led:
        assert led.post_batches(_batch(groups)).is_ok
        seq_type = sqlite3.connect(path).execute(
            "SELECT type FROM pragma_table_info('transfers') WHERE name = 'seq'").fetchone()[0]
        assert seq_type == ("INTEGER" if schema == "new" else "BIGINT")
        whole = led.check(full=True)
        monkeypatch.setattr(ledger_module, "_WALK", 7)  # 60 transfers in 9 reads
        chunked = led.check(full=True)
        quick = led.check()
        assert whole == chunked
        assert whole.is_ok
        assert quick.is_ok
        assert (quick.n_transfers, quick.totals, quick.state_hash, quick.full) == (
            60, whole.totals, whole.state_hash, False)
        assert whole.state_hash == state_hash_of(led.accounts(), _chain_of(list(led.transfers())))


def _chain_of(transfers: list[Transfer]) -> str:
    head = bytes(32)
    for t in transfers:
        head = hashlib.sha256(head + json.dumps(list(t), separators=(",", ":")).encode()).digest()
    return head.hex()


def test_the_walk_replays_a_prepaid_account_across_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.sqlite"
    with _ledger(path) as led:
        led.post([Transfer("f1", "alice", "prepaid", 5), Transfer("f2", "prepaid", "bob", 5)])
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("UPDATE accounts SET allow_negative = 1 WHERE id = 'prepaid'")
        led.post([Transfer("f3", "prepaid", "bob", 5), Transfer("f4", "alice", "prepaid", 5)])
        db.execute("UPDATE accounts SET allow_negative = 0 WHERE id = 'prepaid'")
        db.close()
        monkeypatch.setattr(ledger_module, "_WALK", 1)
        assert led.check(full=True).problems == (
            "transfer 'f3' (seq 3): account 'prepaid' forbids a negative balance but went to -5",)


# ----------------------------------------------------------------- transfers from sums
def _reference(labels: list[str], sums: np.ndarray, due: np.ndarray, span: str, interval: int,
               prefix: str) -> list[Transfer]:
    """The transfers of :func:`transfers_from_sums`, written out one by one."""
    out = []
    for j, (code, _, counter, energy) in enumerate(FLOWS):
        for p, a in zip(labels, sums[:, j].tolist(), strict=True):
            if a == 0:
                continue
            own = f"participant:{p}:{'energy' if energy else 'money'}"
            receives = (a > 0) == energy
            out.append(Transfer(f"{prefix}{span}/{code}/{p}", counter if receives else own,
                                own if receives else counter, abs(a), code, interval))
        surplus = int(sums[:, j].sum()) - int(due[j])
        if surplus:
            rounding = ACCOUNTS["rounding_energy" if energy else "rounding_money"]
            pair = (counter, rounding) if (surplus > 0) != energy else (rounding, counter)
            out.append(Transfer(f"{prefix}{span}/rounding/{code}", *pair, abs(surplus),
                                "rounding", interval))
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 6))
def test_transfers_from_sums_as_columns_are_the_transfers_one_by_one(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    labels = [f"h{i}" for i in range(n)]
    sums = np.where(rng.random((n, len(FLOWS))) < 0.3, 0, rng.integers(-500, 500,
                                                                       (n, len(FLOWS))))
    due = sums.sum(axis=0) + rng.integers(-1, 2, len(FLOWS))
    batch = transfer_batch_from_sums(labels, sums, due, span="0-95", interval=0, prefix="r/")
    want = _reference(labels, sums, due, "0-95", 0, "r/")
    assert list(batch) == want
    assert transfers_from_sums(labels, sums, due, span="0-95", interval=0, prefix="r/") == want
    assert batch.sizes.tolist() == [len(want)]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 6))
def test_a_netted_group_moves_every_account_as_the_group_by_line(seed: int, n: int) -> None:
    """Netted through the clearing accounts (the 'day' granularity), every
    participant and operator account moves as with one transfer per line, the
    clearing accounts end at zero, and each participant appears at most once
    per unit."""
    from transactive.settlement.transfers import CLEARING, _moves

    rng = np.random.default_rng(seed)
    labels = [f"h{i}" for i in range(n)]
    sums = np.where(rng.random((n, len(FLOWS))) < 0.3, 0, rng.integers(-500, 500,
                                                                       (n, len(FLOWS))))
    due = sums.sum(axis=0) + rng.integers(-1, 2, len(FLOWS))
    by_line = transfer_batch_from_sums(labels, sums, due, span="0-95", interval=0)
    netted = transfer_batch_from_sums(labels, sums, due, span="0-95", interval=0, net=True)
    moved = _moves(netted)
    assert [moved.pop(a, 0) for a in CLEARING] == [0, 0]
    assert {a: v for a, v in moved.items() if v} == {a: v for a, v in _moves(by_line).items()
                                                      if v}
    mine = [t for t in netted if t.debit.startswith("participant:")
            or t.credit.startswith("participant:")]
    assert len(mine) == len({(t.debit, t.credit) for t in mine}) <= 2 * n
    assert len(set(netted.id.tolist())) == len(netted)


def test_check_sums_reads_a_batch_as_a_list() -> None:
    sums = np.array([[0, 0, 4, 150, 0, 0, 0, 0], [0, 0, -2, -10, 0, 0, 3, 0]])
    due = np.array([0, 0, 2, 140, 0, 0, 3, 0])
    moves = {**dict.fromkeys(ACCOUNTS.values(), 0), "utility:money": 2,
             "utility:energy": -140, "grid:money": 3}
    batch = transfer_batch_from_sums(["a", "b"], sums, due, span="0-2", interval=0)
    for posting in (batch, list(batch)):
        check_sums("0-2", ["a", "b"], np.array([150, -10]), np.array([4, 1]), moves, posting)
    messages = []
    for posting in (batch, list(batch)):
        with pytest.raises(SettlementError) as err:
            check_sums("0-2", ["a", "b"], np.array([150, -9]), np.array([4, 1]), moves, posting)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "participant 'b': energy moved (Wh) -10, expected -9" in messages[0]


# ----------------------------------------------------------------- write-ahead order
def test_nothing_commits_if_the_call_before_the_commit_fails() -> None:
    led = _ledger()
    led.post_batches(_batch([[Transfer("t1", "alice", "bob", 5)]]))
    before = led.state_hash()

    def fail() -> None:
        raise OSError("the journal did not reach the disk")

    late = _batch([[Transfer("t2", "alice", "bob", 5)]])
    with pytest.raises(OSError, match="did not reach"):
        led.apply(groups=late, cursor=9, before_commit=fail)
    assert (led.state_hash(), led.n_transfers, led.cursor) == (before, 1, 0)
    called: list[str] = []
    led.apply(groups=late, cursor=9, before_commit=lambda: called.append("synced"))
    assert called == ["synced"]
    assert (led.n_transfers, led.cursor) == (2, 9)


def test_the_journal_syncs_on_another_thread_and_the_wait_reports_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Journal(tmp_path / "j.jsonl", fsync=False) as j:
        j.append_transfers([[Transfer("t", "a", "b", 1)]])
        wait = j.sync_later()
        wait()
        wait()  # done: nothing more to wait for
        j.append_transfers([[Transfer("u", "a", "b", 1)]])

        def broken(fd: int) -> None:
            raise OSError("disk full")

        monkeypatch.setattr("os.fsync", broken)
        wait = j.sync_later()
        with pytest.raises(OSError, match="disk full"):
            wait()
        wait()  # reported once
        monkeypatch.undo()
    assert verify_journal(tmp_path / "j.jsonl").n_records == 2
