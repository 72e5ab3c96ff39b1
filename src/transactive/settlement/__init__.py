"""Settlement: every cleared trade ends as money and energy moved exactly once.

- :mod:`~transactive.settlement.ledger`: double-entry ledger (SQLite or PostgreSQL);
- :mod:`~transactive.settlement.rules`: clearing + meters -> transfers, statements;
- :mod:`~transactive.settlement.amounts`: exact amounts and running-total rounding, one
  interval or a block of intervals as arrays;
- :mod:`~transactive.settlement.transfers`: posted sums -> transfers, and their invariants;
- :mod:`~transactive.settlement.settle`: :class:`Settlement`, the service (per interval,
  or a day block at a time);
- :mod:`~transactive.settlement.reconcile`: statements against the ledger, as running sums;
- :mod:`~transactive.settlement.statements`: statements streamed to CSV, gzip-ed CSV or
  Parquet, and read back (:func:`read_statements`);
- :mod:`~transactive.settlement.journal`: hash-chained, signed journal;
- :mod:`~transactive.settlement.operator`: the operator's key, which signs the
  journal's checkpoints (and the exchange's receipts), kept outside the data;
- :mod:`~transactive.settlement.oracle`: signed meter readings;
- :mod:`~transactive.settlement.verify`: re-check a run folder from scratch.
"""

from transactive._lazy import attach

_EXPORTS = {
    "Account": "transactive.settlement.ledger",
    "AccountKind": "transactive.settlement.ledger",
    "BlockAmounts": "transactive.settlement.amounts",
    "IntegrityReport": "transactive.settlement.ledger",
    "IntervalLines": "transactive.settlement.rules",
    "IntervalPrices": "transactive.settlement.rules",
    "IntervalSettlement": "transactive.settlement.settle",
    "JOURNAL_FILE": "transactive.settlement.verify",
    "Journal": "transactive.settlement.journal",
    "JournalReport": "transactive.settlement.journal",
    "LEDGER_FILE": "transactive.settlement.verify",
    "Ledger": "transactive.settlement.ledger",
    "MeterData": "transactive.settlement.oracle",
    "MeterReading": "transactive.settlement.oracle",
    "Oracle": "transactive.settlement.oracle",
    "OracleConfig": "transactive.settlement.oracle",
    "OrderAcceptance": "transactive.settlement.journal",
    "PostReport": "transactive.settlement.ledger",
    "PostResult": "transactive.settlement.ledger",
    "Reconciliation": "transactive.settlement.reconcile",
    "Refusal": "transactive.settlement.oracle",
    "RunningTotals": "transactive.settlement.rules",
    "STATEMENT_COLUMNS": "transactive.settlement.statements",
    "Settlement": "transactive.settlement.settle",
    "SettlementConfig": "transactive.settlement.settle",
    "SettlementError": "transactive.settlement.ledger",
    "Status": "transactive.settlement.ledger",
    "Transfer": "transactive.settlement.ledger",
    "Unit": "transactive.settlement.ledger",
    "Verdict": "transactive.settlement.oracle",
    "VerificationReport": "transactive.settlement.verify",
    "block_amounts": "transactive.settlement.amounts",
    "compute_lines": "transactive.settlement.rules",
    "default_key_path": "transactive.settlement.operator",
    "iter_statements": "transactive.settlement.statements",
    "line_transfers": "transactive.settlement.rules",
    "operator_key": "transactive.settlement.operator",
    "order_messages": "transactive.settlement._signing",
    "read_journal": "transactive.settlement.journal",
    "read_statements": "transactive.settlement.statements",
    "replay_journal": "transactive.settlement.journal",
    "sign_orders": "transactive.settlement._signing",
    "sign_reading": "transactive.settlement.oracle",
    "sign_receipt": "transactive.settlement._signing",
    "trusted_operator": "transactive.settlement.operator",
    "verify_journal": "transactive.settlement.journal",
    "verify_receipt": "transactive.settlement._signing",
    "verify_run": "transactive.settlement.verify",
    "recover_run": "transactive.settlement.verify",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
