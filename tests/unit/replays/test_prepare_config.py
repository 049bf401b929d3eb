"""`prepare_config`: the config a replay runs, with condition overrides set."""

from __future__ import annotations

import numpy as np
from helpers import make_config

from workbench.replays.session import prepare_config


def test_numpy_overrides_from_a_sweep_frame_become_python_values(tmp_path):
    # A sweep's best row gives numpy scalars: np.int64 qty was refused, and a
    # config holding one could not be written as TOML for the runners.
    cfg = prepare_config(
        make_config(tmp_path), condition_overrides={"qty": np.int64(2), "rearm": np.bool_(True)}
    )
    cond = cfg.strategies[0].params["conditions"][0]
    assert (cond["qty"], cond["rearm"]) == (2, True)
    assert (type(cond["qty"]), type(cond["rearm"])) == (int, bool)
    assert "qty = 2" in cfg.to_toml()
