"""The privileged expert for whichever backend an observation comes from (tabletop or LIBERO).

Oracles that re-express the expert's *actions* (OpenVLA tokens, openpi chunks) hold one of
each and pick per episode from the privileged state's layout, so one oracle class covers
every suite a conformance run can use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_eval.conformance.keypoints import is_libero
from vla_eval.sims.libero.expert import LiberoScriptedExpert
from vla_eval.sims.tabletop.expert import ScriptedExpert


class BackendExpert:
    """Slot-aware dispatch to :class:`ScriptedExpert` / :class:`LiberoScriptedExpert`."""

    def __init__(self):
        self.tabletop = ScriptedExpert()
        self.libero = LiberoScriptedExpert()

    def reset(self, instructions, seeds=None, slots=None) -> None:
        self.tabletop.reset(instructions, seeds, slots=slots)
        self.libero.reset(instructions, seeds, slots=slots)

    def release(self, slots) -> None:
        self.tabletop.release(slots)
        self.libero.release(slots)

    def actions(self, obs_batch: list[dict[str, Any]], slots=None) -> np.ndarray:
        """One LIBERO-native action (normalised delta EEF, axis-angle, -1 open / +1 close) per row: ``(B, 7)``."""
        slots = list(range(len(obs_batch))) if slots is None else list(slots)
        out = np.zeros((len(obs_batch), 7))
        for i, (obs, slot) in enumerate(zip(obs_batch, slots)):
            if "privileged" not in obs:
                raise ValueError("the oracle needs privileged state (obs['privileged'])")
            expert = self.libero if is_libero(obs["privileged"]) else self.tabletop
            out[i] = expert.predict([obs], slots=[slot]).actions[0, 0]
        return out
