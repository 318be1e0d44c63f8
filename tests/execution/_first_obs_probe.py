"""Experts that log what the first observation of each episode was (imported by spawned run workers)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from vla_eval.sims.libero.expert import LiberoScriptedExpert
from vla_eval.sims.simpler.expert import SimplerScriptedExpert


def obs_digest(obs: dict) -> str:
    """Hash of proprio state and every camera image: equal digests mean the same starting scene."""
    h = hashlib.sha256()
    for group in ("state", "images"):
        for key in sorted(obs.get(group) or {}):
            h.update(f"{group}/{key}".encode())
            h.update(np.ascontiguousarray(obs[group][key]).tobytes())
    return h.hexdigest()[:16]


class _Probe:
    """Mixin: after each reset, appends the digest of the first observation to ``log``.

    Asks for images (the experts themselves do not) so both commands render the same cameras."""

    needs_images = True

    def _probe_init(self, log: str) -> None:
        self._log, self._fresh = log, False

    def reset(self, instructions, seeds=None, slots=None):
        self._fresh = True
        return super().reset(instructions, seeds, slots)

    def predict(self, obs_batch, slots=None):
        if self._fresh:
            self._fresh = False
            with open(self._log, "a") as f:
                f.write(json.dumps({"digest": obs_digest(obs_batch[0])}) + "\n")
        return super().predict(obs_batch, slots)


class LiberoProbe(_Probe, LiberoScriptedExpert):
    def __init__(self, log: str):
        super().__init__()
        self._probe_init(log)


class SimplerProbe(_Probe, SimplerScriptedExpert):
    def __init__(self, log: str):
        super().__init__()
        self._probe_init(log)
