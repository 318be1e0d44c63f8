"""One builder of what an episode is: the settings ``run``, ``record-demos``, ``canary`` and ``conformance`` share.

An episode is fixed by the plan item (task, split, episode index, init-state id, seed), the
backend's reset options for it (LIBERO's fixed init state and fixture draw, SimplerEnv's
configuration id), the step limit, the settle phase, the success rule and how action chunks
are executed. When each command assembled these itself, ``record-demos`` forgot the reset
options and the success rule, so a demo of LIBERO or SimplerEnv could start elsewhere and be
judged otherwise than the evaluation episode of the same index. Every command now goes
through :func:`episode_setup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vla_eval.errors import ConfigError
from vla_eval.execution.plan import PlanItem, build_plan
from vla_eval.execution.rollout import EpisodeSettings, run_episodes

if TYPE_CHECKING:
    from vla_eval.adapter import Policy
    from vla_eval.backends import Backend
    from vla_eval.policy_config import PolicyConfig
    from vla_eval.record import EpisodeRecord
    from vla_eval.spec import SuiteSpec
    from vla_eval.video import VideoPolicy


def chunk_execution(policy: "PolicyConfig | None", replan_steps: int | None) -> tuple[int | None, float | None]:
    """(replan_steps, temporal_ensemble) for the rollout: ``--replan-steps`` wins over the policy config
    (openpi LIBERO: ``execution: {replan_steps: 5}`` of each 10-action chunk)."""
    if replan_steps is not None and replan_steps < 1:
        raise ConfigError(f"--replan-steps {replan_steps}: expected a positive number of actions")
    ensemble = policy.execution.temporal_ensemble if policy is not None else None
    configured = policy.execution.replan_steps if policy is not None else None
    replan = replan_steps if replan_steps is not None else configured
    if replan is None and ensemble is not None:
        replan = 1  # ensembling needs overlapping chunks: a new chunk every step, as ACT does
    return replan, ensemble


def cameras_needed(spec: "SuiteSpec", policy_cls: Any, videos: "VideoPolicy") -> tuple[str, ...]:
    """The cameras the run's envs declare: a state-only policy without videos declares none.

    Which of them are drawn on a given step is the rollout's call (render on demand:
    :func:`~vla_eval.execution.rollout.policy_cameras`, :class:`~vla_eval.sims.contract.RenderOnDemand`).
    """
    if getattr(policy_cls, "needs_images", True):
        return tuple(spec.cameras)
    if videos.enabled and spec.cameras:
        return (spec.cameras[0],)
    return ()


@dataclass(frozen=True)
class EpisodeSetup:
    """A suite's episodes as every command runs them: the plan, the settings and each episode's reset options."""

    spec: "SuiteSpec"
    settings: EpisodeSettings

    @property
    def backend(self) -> "Backend":
        from vla_eval.backends import get_backend

        return get_backend(self.spec.backend)

    def plan(self, split: str | None = None) -> list[PlanItem]:
        """The run's plan (seeds and init-state ids included), optionally one split of it."""
        items = build_plan(self.spec)
        return items if split is None else [i for i in items if i.split == split]

    def reset_options(self, item: PlanItem) -> dict[str, Any] | None:
        """``env.reset(options=...)`` for ``item``: the same call the run's workers make."""
        return self.backend.episode_reset_options(self.spec, item.task, item.episode_index)

    def run(self, env, policy: "Policy", item: PlanItem, frames: list | None = None) -> tuple["EpisodeRecord", bool]:
        """One episode on ``env`` (a batch of one), started and judged as ``vla-eval run`` would."""
        return run_episodes([env], policy, [item], self.settings, [frames], [self.reset_options(item)])[0]


def episode_setup(
    spec: "SuiteSpec",
    run_id: str,
    policy: "PolicyConfig | None" = None,
    replan_steps: int | None = None,
    video_camera: str | None = None,
    render: str = "on_demand",
) -> EpisodeSetup:
    """Build the episode settings of ``spec`` for one command.

    ``policy`` contributes its chunk execution (``execution:`` block); ``replan_steps`` is the
    ``--replan-steps`` override. A policy object without a config runs its whole chunks.
    ``render``: ``on_demand`` or ``eager`` (``--render``); both give the same records.
    """
    from vla_eval.sims.contract import RENDER_MODES

    if render not in RENDER_MODES:
        raise ConfigError(f"--render {render!r}: expected on-demand or eager")
    replan, ensemble = chunk_execution(policy, replan_steps)
    settings = EpisodeSettings(
        run_id=run_id,
        suite=spec.name,
        max_steps={t.name: spec.task_max_steps(t.name) for t in spec.tasks},
        settle_steps=spec.settle_steps,
        settle_action=tuple(spec.settle_action),
        replan_steps=replan,
        temporal_ensemble=ensemble,
        action_rule=policy.execution.action_rule if policy is not None else None,
        video_camera=video_camera,
        success_rule=spec.success_rule,
        render=render,
    )
    return EpisodeSetup(spec=spec, settings=settings)
