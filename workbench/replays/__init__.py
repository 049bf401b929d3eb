"""Replay sessions, their reports, and promotion of what passed.

The verb is `replay` (also ``workbench.replay(config, data, ...)``); this
package, named for the sessions it holds, is ``workbench.replays``.
"""

from workbench.replays.promote import PromotionRefused, evaluate, promote
from workbench.replays.report import ReplayResult, build_result, fills_hash
from workbench.replays.session import ReplayFailed, prepare_config, replay

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
