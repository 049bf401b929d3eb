"""Market data: tick files in and out, and synthetic ticks, as numpy columns.

Importing this package never imports pandas, and pyarrow only when a Parquet
file is loaded whole or written (the replay gateway streams Parquet with the
numpy-only `parquet_lite`), so the gateway runner stays small.
"""

from workbench.marketdata.loaders import FORMATS, PRICE_MODES, load_ticks, symbol_from_path
from workbench.marketdata.synth import DEFAULT_START_TS_NS, generate_samples, synth_ticks
from workbench.marketdata.table import TickTable
from workbench.marketdata.writers import write_ticks

__all__ = [
    "DEFAULT_START_TS_NS",
    "FORMATS",
    "PRICE_MODES",
    "TickTable",
    "generate_samples",
    "load_ticks",
    "symbol_from_path",
    "synth_ticks",
    "write_ticks",
]
