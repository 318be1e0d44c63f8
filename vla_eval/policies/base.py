"""Re-exports of the policy contract for adapters written against ``vla_eval.policies.base``.

The contract itself lives in :mod:`vla_eval.adapter` (the ``Policy`` base class) and
:mod:`vla_eval.actions.space` (action types and chunk validation).
"""

from vla_eval.actions.space import (
    LIBERO_DELTA_EEF,
    ActionChunk,
    ActionSpace,
    PolicyOutputError,
    normalize_chunk,
    validate_chunk,
)
from vla_eval.adapter import Policy, SlotStates, predict_policy, reset_policy
from vla_eval.jsonsafe import json_safe

__all__ = [
    "LIBERO_DELTA_EEF",
    "ActionChunk",
    "ActionSpace",
    "Policy",
    "PolicyOutputError",
    "SlotStates",
    "json_safe",
    "normalize_chunk",
    "predict_policy",
    "reset_policy",
    "validate_chunk",
]
