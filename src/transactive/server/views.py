"""What the exchange shows: a member's own orders, trades and statement; the
public market data; the trial's monitoring figures.

A member sees only its own objects: an order id is looked up among the
caller's orders, so another member's order is simply not found (404).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from transactive.server.errors import NotFound
from transactive.server.exchange import ENERGY, MONEY, Exchange, OrderState

__all__ = ["depth", "evaluation", "order_of", "orders_of", "public_trades", "statement_of",
           "summary", "trades_of"]


def _order(o: OrderState) -> dict[str, Any]:
    out = asdict(o)
    out["remaining_kwh"] = o.remaining_kwh
    return out


def orders_of(ex: Exchange, who: str, status: str | None = None) -> list[dict[str, Any]]:
    return [_order(o) for (p, _), o in ex.orders.items()
            if p == who and (status is None or o.status == status)]


def order_of(ex: Exchange, who: str, order_id: str) -> dict[str, Any]:
    order = ex.orders.get((who, order_id))
    if order is None:
        raise NotFound("order_id", f"no order {order_id!r} of yours")
    return _order(order)


def trades_of(ex: Exchange, who: str) -> list[dict[str, Any]]:
    """The member's trades, each with the operator's signed receipt."""
    out = []
    for t in ex.trades_of(who):
        body = asdict(t)
        out.append({**body, "side": "buy" if t.buyer == who else "sell",
                    "receipt": ex.receipt({"kind": "trade", **body})})
    return out


def statement_of(ex: Exchange, who: str) -> dict[str, Any]:
    """Balances in the ledger, energy traded, metered energy, and the saving
    against buying (selling) the same energy at the utility's tariff."""
    tariff = ex.config.tariff
    bought = sold = paid = received = 0.0
    for t in ex.trades_of(who):
        if t.buyer == who:
            bought += t.quantity_kwh
            paid += t.price_per_kwh * t.quantity_kwh
        if t.seller == who:
            sold += t.quantity_kwh
            received += t.price_per_kwh * t.quantity_kwh
    metered = sum(wh for (m, _), wh in ex.readings_wh.items() if m == who) / 1000
    saving = (bought * tariff.retail_price_per_kwh - paid) + \
        (received - sold * tariff.feed_in_price_per_kwh)
    return {"participant": who, **ex.balances(who), "bought_kwh": bought, "sold_kwh": sold,
            "paid": paid, "received": received, "metered_kwh": metered,
            "saving_vs_tariff": saving}


def summary(ex: Exchange, now_ms: int) -> dict[str, Any]:
    cfg, m = ex.config, ex.monitor
    last = ex.trades[-1].price_per_kwh if ex.trades else None
    return {"mode": cfg.mode, "mechanism": cfg.mechanism if cfg.mode == "auction" else "book",
            "interval": ex.interval, "gate_period_s": cfg.gate_period_s,
            "lot_kwh": cfg.lot_kwh,
            "next_gate_ms": (ex.interval + 1) * cfg.gate_period_ms,
            "participants": len(ex.members), "trades": m.trades,
            "clearings": len(ex.clearings),
            "last_price_per_kwh": last, "volume_kwh": m.volume_kwh,
            "vwap_per_kwh": m.value / m.volume_kwh if m.volume_kwh else None,
            "savings_vs_tariff": m.savings, "tariff": cfg.tariff.model_dump(),
            "halted_until_ms": ex.breaker.halted_until(now_ms),
            "accepted": dict(m.accepted), "refused": dict(m.refused)}


def depth(ex: Exchange, levels: int) -> dict[str, Any]:
    """The continuous book's top levels; an auction's bids are sealed (only
    how many orders wait for the gate)."""
    if ex.config.mode == "auction":
        return {"sealed": True, "pending_orders": ex.pending_count()}
    d = ex.book.depth(levels)
    return {"sealed": False,
            "bids": [[p, q, n] for p, q, n in zip(d.bid_price.tolist(), d.bid_quantity.tolist(),
                                                  d.bid_orders.tolist(), strict=True)],
            "asks": [[p, q, n] for p, q, n in zip(d.ask_price.tolist(), d.ask_quantity.tolist(),
                                                  d.ask_orders.tolist(), strict=True)]}


def public_trades(ex: Exchange, after: int, limit: int) -> list[dict[str, Any]]:
    """Trades after number ``after``: time, interval, price, quantity (no
    names); an auction's energy shows once, as bought (its sellers' side, the
    same energy sold to the exchange, is not listed again)."""
    out = []
    for t in ex.trades[after + 1:]:
        if t.buyer != "exchange":
            out.append({"n": t.n, "at_ms": t.at_ms, "interval": t.interval,
                        "price_per_kwh": t.price_per_kwh, "quantity_kwh": t.quantity_kwh})
            if len(out) == limit:
                break
    return out


def evaluation(ex: Exchange, now_ms: int) -> dict[str, Any]:
    """The trial's evaluation: its figures, every member's statement, the
    halts, the exchange's own accounts (what rounding or a mechanism kept)."""
    return {"summary": summary(ex, now_ms),
            "members": [statement_of(ex, p) for p in sorted(ex.members)],
            "halts": [asdict(h) for h in ex.breaker.halts],
            "exchange_money_cents": ex.ledger.balance(MONEY),
            "exchange_energy_wh": ex.ledger.balance(ENERGY),
            "releases": ex.releases, "state_hash": ex.state_hash(),
            "journal_records": ex.journal.seq}
