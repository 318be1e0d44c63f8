"""Action types and the conversion from a policy's native space to an env's control space.

``space``: what an action means (:class:`ActionSpace`) and how a chunk is checked;
``convert``: gripper / rotation / scale conversion and the chunk executor.
"""

from vla_eval.actions.convert import *  # noqa: F403
from vla_eval.actions.space import (  # noqa: F401
    LIBERO_DELTA_EEF,
    ActionChunk,
    ActionSpace,
    PolicyOutputError,
    normalize_chunk,
    validate_chunk,
)
