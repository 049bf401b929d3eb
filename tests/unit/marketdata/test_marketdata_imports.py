"""The gateway imports market data code and must stay small: no pandas, lazy pyarrow.

numpy is allowed: tables are numpy columns.
"""

import subprocess
import sys
from pathlib import Path

import workbench.marketdata

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys
import workbench.marketdata.loaders, workbench.marketdata.synth
from workbench.marketdata import load_ticks, synth_ticks, write_ticks
write_ticks(synth_ticks("X", 100, 1), sys.argv[1])
load_ticks(sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"pandas", "pyarrow"})
print("HEAVY=" + ",".join(heavy))
"""


def test_csv_path_imports_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "t.csv")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )

    # structlog's default logger also writes to stdout: pick our line.
    [heavy] = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == "HEAVY="


def test_public_api_is_pinned() -> None:
    assert sorted(workbench.marketdata.__all__) == [
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
