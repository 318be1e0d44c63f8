"""Policy registry: every adapter and baseline is reachable by name through here."""

from __future__ import annotations

from vla_eval.actions.space import ActionChunk, ActionSpace, PolicyOutputError
from vla_eval.adapter import Policy
from vla_eval.registry import Registry

POLICIES: Registry[Policy] = Registry("policy", base=Policy)
POLICIES.register(
    "random", "vla_eval.policies.baselines:RandomPolicy", help="uniform random actions (seeded per episode)"
)
POLICIES.register("noop", "vla_eval.policies.baselines:NoopPolicy", help="zero motion, gripper open")
POLICIES.register(
    "fixed_latency",
    "vla_eval.policies.baselines:FixedLatencyPolicy",
    help="holds still; each call costs latency_ms (a model stand-in for sizing a serving layout)",
)
POLICIES.register(
    "scripted", "vla_eval.sims.tabletop.expert:ScriptedExpert", help="privileged-state expert for built-in scenes"
)
POLICIES.register(
    "vla_r1",
    "vla_eval.policies.vla_r1:VlaR1Policy",
    help="VLA-R1 (Qwen2.5-VL) 2D trajectory/affordance + depth planner bridge",
)
POLICIES.register("openvla", "vla_eval.policies.openvla:OpenVlaPolicy", help="OpenVLA-style action-token model")
POLICIES.register(
    "lerobot",
    "vla_eval.policies.lerobot:LeRobotPolicy",
    help="any LeRobot policy folder or hub id (path=DIR); runs in its own env (vla-eval env create lerobot)",
)
POLICIES.register(
    "remote",
    "vla_eval.remote.openpi_policy:RemotePolicy",
    help="openpi-protocol websocket policy server (pi0, pi05, vla-eval serve)",
)
POLICIES.register(
    "allenai",
    "vla_eval.remote.allenai_policy:AllenaiPolicy",
    help="allenai vla-evaluation-harness model server (url=ws://HOST:PORT)",
)
POLICIES.register(
    "libero_scripted",
    "vla_eval.sims.libero.expert:LiberoScriptedExpert",
    help="privileged-state pick-and-place expert for LIBERO (spatial, object)",
)
POLICIES.register(
    "reference",
    "vla_eval.policies.reference:ReferencePolicy",
    help="small CNN trained by behaviour cloning on tabletop_basic demos (checkpoint=early|final|PATH)",
)
POLICIES.register(
    "simpler_scripted",
    "vla_eval.sims.simpler.expert:SimplerScriptedExpert",
    help="privileged-state expert for the SimplerEnv-style tasks",
)

from vla_eval.plugins import POLICY_GROUP, register_plugins  # noqa: E402

register_plugins(POLICIES, POLICY_GROUP)

__all__ = ["POLICIES", "ActionChunk", "ActionSpace", "Policy", "PolicyOutputError"]
