"""Policy registry: every adapter and baseline is reachable by name through here."""

from __future__ import annotations

from vla_eval.policies.base import ActionChunk, ActionSpace, Policy, PolicyOutputError
from vla_eval.registry import Registry

POLICIES: Registry[Policy] = Registry("policy")
POLICIES.register("random", "vla_eval.policies.baselines:RandomPolicy", help="uniform random actions (seeded per episode)")
POLICIES.register("noop", "vla_eval.policies.baselines:NoopPolicy", help="zero motion, gripper open")
POLICIES.register("scripted", "vla_eval.policies.scripted:ScriptedExpert", help="privileged-state expert for built-in scenes")

__all__ = ["POLICIES", "ActionChunk", "ActionSpace", "Policy", "PolicyOutputError"]
