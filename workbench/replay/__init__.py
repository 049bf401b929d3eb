"""Replay sessions, their reports, and promotion of what passed.

The package is itself callable, so ``workbench.replay(config, data, ...)`` is
the replay function while ``from workbench.replay import ReplayResult`` still
works: one name for the folder and the verb, as users expect.
"""

import sys
import types

from workbench.replay.promote import PromotionRefused, evaluate, promote
from workbench.replay.report import ReplayResult, build_result, fills_hash
from workbench.replay.session import ReplayFailed, prepare_config, replay

__all__ = [
    "PromotionRefused",
    "ReplayFailed",
    "ReplayResult",
    "build_result",
    "evaluate",
    "fills_hash",
    "prepare_config",
    "promote",
    "replay",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
