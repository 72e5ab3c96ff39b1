"""Settlement: every cleared trade ends as money and energy moved exactly once.

- :mod:`~transactive.settlement.ledger`: double-entry ledger (SQLite or PostgreSQL);
- :mod:`~transactive.settlement.rules`: clearing + meters -> transfers, statements;
- :mod:`~transactive.settlement.settle`: :class:`Settlement`, the per-interval service;
- :mod:`~transactive.settlement.journal`: hash-chained, signed journal;
- :mod:`~transactive.settlement.oracle`: signed meter readings;
- :mod:`~transactive.settlement.verify`: re-check a run folder from scratch.
"""

from transactive.settlement._signing import order_messages, sign_orders
from transactive.settlement.journal import (
    Journal,
    JournalReport,
    OrderAcceptance,
    read_journal,
    replay_journal,
    verify_journal,
)
from transactive.settlement.ledger import (
    Account,
    AccountKind,
    IntegrityReport,
    Ledger,
    PostReport,
    PostResult,
    SettlementError,
    Status,
    Transfer,
    Unit,
)
from transactive.settlement.oracle import (
    MeterData,
    MeterReading,
    Oracle,
    OracleConfig,
    Refusal,
    Verdict,
    sign_reading,
)
from transactive.settlement.rules import (
    IntervalLines,
    IntervalPrices,
    compute_lines,
    largest_remainder,
    line_transfers,
)
from transactive.settlement.settle import (
    IntervalSettlement,
    Reconciliation,
    Settlement,
    SettlementConfig,
)
from transactive.settlement.verify import (
    JOURNAL_FILE,
    LEDGER_FILE,
    VerificationReport,
    verify_run,
)

__all__ = [
    "JOURNAL_FILE",
    "LEDGER_FILE",
    "Account",
    "AccountKind",
    "IntegrityReport",
    "IntervalLines",
    "IntervalPrices",
    "IntervalSettlement",
    "Journal",
    "JournalReport",
    "Ledger",
    "MeterData",
    "MeterReading",
    "Oracle",
    "OracleConfig",
    "OrderAcceptance",
    "PostReport",
    "PostResult",
    "Reconciliation",
    "Refusal",
    "Settlement",
    "SettlementConfig",
    "SettlementError",
    "Status",
    "Transfer",
    "Unit",
    "Verdict",
    "VerificationReport",
    "compute_lines",
    "largest_remainder",
    "line_transfers",
    "order_messages",
    "read_journal",
    "replay_journal",
    "sign_orders",
    "sign_reading",
    "verify_journal",
    "verify_run",
]
