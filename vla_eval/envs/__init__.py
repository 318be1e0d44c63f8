"""Kept so ``import vla_eval.envs`` (which registers the gymnasium ids) keeps working.

The simulators live in :mod:`vla_eval.sims`, one folder each.
"""

from vla_eval.sims import NAMESPACE, registered_env_ids, scene_env_id  # noqa: F401
