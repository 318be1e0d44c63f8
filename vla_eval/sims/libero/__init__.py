"""LIBERO (robosuite + MuJoCo) behind the vla-eval env contract.

Importing this package registers the gymnasium id ``vla_eval/LIBERO-v0``:
``gymnasium.make("vla_eval/LIBERO-v0", task="<libero task name>", cameras=("agentview",))``.
LIBERO itself (``pip install -e .[libero]``) is imported only when an env is built.
"""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "vla_eval/LIBERO-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="vla_eval.sims.libero.env:LiberoEnv", disable_env_checker=True)

__all__ = ["ENV_ID"]
