"""`trade_pages`: every trade of an order, a page at a time, and never a loop without end."""

from __future__ import annotations

from typing import Any

from workbench.exchanges.venue_orders import TRADES_PAGE, trade_pages


def trade(i: int | str) -> dict[str, Any]:
    return {"id": i, "order": "7", "symbol": "A/B", "side": "buy", "amount": 1.0, "price": 2.0,
            "timestamp": 1}  # fmt: skip


def test_pages_follow_from_the_last_trade_id_until_a_short_page() -> None:
    listed = [trade(i) for i in range(100, 100 + 2 * TRADES_PAGE + 5)]
    asked: list[dict[str, Any]] = []

    def fetch(params: dict[str, Any]) -> list[dict[str, Any]]:
        asked.append(params)
        return [t for t in listed if t["id"] >= params["fromId"]][:TRADES_PAGE]

    got = trade_pages(fetch, {"orderId": "7"})
    assert [f.trade_id for f in got] == [str(t["id"]) for t in listed]
    assert asked == [
        {"orderId": "7", "fromId": 0},
        {"orderId": "7", "fromId": 100 + TRADES_PAGE},
        {"orderId": "7", "fromId": 100 + 2 * TRADES_PAGE},
    ]


def test_a_venue_that_ignores_from_id_is_asked_twice_not_for_ever() -> None:
    full = [trade(i) for i in range(TRADES_PAGE)]
    calls = []

    def fetch(params: dict[str, Any]) -> list[dict[str, Any]]:
        calls.append(params)
        return full

    assert len(trade_pages(fetch, {})) == TRADES_PAGE and len(calls) == 2


def test_trade_ids_that_are_not_numbers_end_the_paging() -> None:
    full = [trade(f"t{i}") for i in range(TRADES_PAGE)]
    assert len(trade_pages(lambda p: full, {})) == TRADES_PAGE
