"""The dashboard's price chart: what its title, hover texts and price axis show."""

from __future__ import annotations

import pytest

from workbench.notebook.charts import PriceChart

T0 = 1_700_000_000_000_000_000


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (100.15, "100.15"),
        (100.0, "100.00"),
        (100.155, "100.155"),
        (43210.55, "43210.55"),
        (1.0543, "1.0543"),
        (0.00001244, "0.00001244"),
        (-0.00123, "-0.00123"),
        (1e-13, "1e-13"),
        (0.0, "0.00"),
    ],
)
def test_a_price_shows_its_significant_digits_and_at_least_cents(price, text):
    from workbench.notebook.charts import price_text

    assert price_text(price) == text


def test_a_sub_cent_price_is_not_drawn_as_zero():
    # Title, hover texts and axis ticks were formatted .2f: 0.00001244 showed 0.00.
    chart = PriceChart("SHIB/USDT")
    ticks = [(T0 + i, "SHIB/USDT", 0.00001234 + i * 1e-8, 1e6, i + 1) for i in range(50)]
    fills = [(T0 + 10, "F1", "S1", "SHIB/USDT", "BUY", 1e6, 0.00001244, 0.0, 1e6)]
    levels = [{"id": "buy-dip", "symbol": "SHIB/USDT", "state": "ARMED", "trigger": 0.0000125}]
    chart.update(ticks, [], fills, levels, 1e6)
    data = chart.fig.data
    assert "last 0.00001283" in chart.fig.layout.title.text
    assert data[7].text == ("F1 BUY 1e+06 @ 0.00001244",)
    assert data[1].text[0] == "buy-dip trigger 0.0000125 (ARMED)"
    assert chart.fig.layout.yaxis.tickformat is None
    assert chart.fig.layout.yaxis.exponentformat == "none"  # not 12.5µ
