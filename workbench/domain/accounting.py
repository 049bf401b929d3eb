"""Position and PnL accounting over fills (average-cost method)."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.domain.model import Fill

DRIFT = 1e-12
"""A float's drift relative to the quantities summed: what closing a position in pieces leaves."""


def is_drift(qty: float, *sizes: float) -> bool:
    """True if ``qty`` is zero but for a float's drift, given the sizes it was made of."""
    return abs(qty) <= DRIFT * max(1.0, *(abs(x) for x in sizes))


@dataclass(slots=True)
class Position:
    """Net position in one symbol.

    ``qty`` is signed (long > 0, short < 0), net of fees taken out of the asset
    itself; ``avg_price`` is the average cost of the open quantity;
    ``realized_pnl`` is in price units times quantity, before ``fees`` (the
    fills' fees in the same units). Fees paid in a third asset are summed per
    asset in ``other_fees``, not valued.
    """

    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    other_fees: dict[str, float] = field(default_factory=dict)
    asset_fees: float = 0.0
    """Units fees took out of the open position since it opened (0 when flat): what a
    strategy that sells what it bought asks beyond what is held."""
    peak: float = 0.0
    """The largest size the open position had (0 when flat): the scale of its float drift."""

    def apply(self, fill: Fill) -> float:
        """Apply a fill; returns the PnL it realised.

        A fee the venue took out of the traded asset (``fill.fee_qty``) leaves the
        position as those units sold at the fill's price, their proceeds paid as
        the fee (``fill.fee`` is their value): the position is what the account holds.
        """
        before = self.qty
        realized = self._trade(fill.qty * fill.side.sign, fill.price)
        if fill.fee_qty:
            realized += self._trade(-fill.fee_qty, fill.price)
        if not self.qty:
            self.asset_fees = 0.0
        elif (before > 0) != (self.qty > 0) or not before:  # opened or flipped by this fill
            self.asset_fees = fill.fee_qty
        else:
            self.asset_fees += fill.fee_qty
        self.realized_pnl += realized
        self.fees += fill.quote_fee
        if fill.fee_asset:
            self.other_fees[fill.fee_asset] = self.other_fees.get(fill.fee_asset, 0.0) + fill.fee
        return realized

    def _trade(self, signed: float, price: float) -> float:
        realized = 0.0
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            new_qty = self.qty + signed
            self.avg_price = (self.avg_price * abs(self.qty) + price * abs(signed)) / abs(new_qty)
            self.qty = new_qty
            self.peak = max(self.peak, abs(new_qty))
        else:
            closing = min(abs(signed), abs(self.qty))
            direction = 1.0 if self.qty > 0 else -1.0
            realized = (price - self.avg_price) * closing * direction
            remaining = abs(signed) - closing
            self.qty += signed
            # Closed, but for a float's drift: of the position at its largest (closed in
            # pieces, 4669178.9 less its parts leaves 7e-10), or of this fill.
            if is_drift(self.qty, self.peak, signed):
                self.qty = self.avg_price = self.peak = 0.0
            elif remaining > 0:
                # The fill flipped the position: the rest opens at the fill price.
                self.avg_price = price
                self.peak = abs(self.qty)
        return realized

    def unrealized(self, mark: float) -> float:
        """Open PnL at price ``mark``."""
        return (mark - self.avg_price) * self.qty


class Portfolio:
    """Positions for every symbol seen in fills."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}

    def apply(self, fill: Fill) -> float:
        """Apply a fill to its symbol's position; returns realised PnL."""
        pos = self.positions.get(fill.symbol)
        if pos is None:
            pos = self.positions[fill.symbol] = Position(fill.symbol)
        return pos.apply(fill)

    @property
    def realized_pnl(self) -> float:
        """Total realised PnL over all symbols."""
        return sum(p.realized_pnl for p in self.positions.values())

    @property
    def fees(self) -> float:
        """Total fees paid over all symbols (a rebate counts negative)."""
        return sum(p.fees for p in self.positions.values())

    @property
    def other_fees(self) -> dict[str, float]:
        """Fees paid in third assets (not valued in the quote currency), per asset."""
        out: dict[str, float] = {}
        for p in self.positions.values():
            for asset, amount in p.other_fees.items():
                out[asset] = out.get(asset, 0.0) + amount
        return out

    def asset_fees(self, symbol: str) -> float:
        """`Position.asset_fees` of ``symbol`` (0 when it has no position)."""
        pos = self.positions.get(symbol)
        return pos.asset_fees if pos else 0.0

    def position(self, symbol: str) -> float:
        """Signed quantity held in ``symbol``."""
        pos = self.positions.get(symbol)
        return pos.qty if pos else 0.0
