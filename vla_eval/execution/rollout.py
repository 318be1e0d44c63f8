"""Episodes: envs and one policy in a loop, turned into :class:`EpisodeRecord` objects.

``run_episodes`` steps K envs in lock-step so a batched policy gets one ``predict`` call
for K observations per step (where GPU throughput comes from). Nothing here raises for a
bad policy or a failing env: both end the affected episode with a recorded termination
reason, and the other episodes of the batch carry on.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from vla_eval.actions import ChunkExecutor, to_env_actions
from vla_eval.actions.space import (
    LIBERO_DELTA_EEF,
    ActionSpace,
    PolicyOutputError,
    normalize_chunk,
    validate_chunk,
)
from vla_eval.actions.wrapper_rules import ActionRule, make_rule
from vla_eval.adapter import Policy, predict_policy, reset_policy
from vla_eval.errors import RetryEpisode
from vla_eval.execution.plan import PlanItem
from vla_eval.provenance import now_iso
from vla_eval.record import EpisodeRecord
from vla_eval.sims.contract import CAMERA_PARAMS_KEY, contract_of, supports_on_demand
from vla_eval.sims.orientation import ImageConversion, conversion, conversion_for


@dataclass(frozen=True)
class EpisodeSettings:
    """The per-run knobs a worker needs; plain data so it pickles to spawned workers."""

    run_id: str
    suite: str
    max_steps: dict[str, int]
    settle_steps: int
    settle_action: tuple[float, ...]
    replan_steps: int | None = None
    temporal_ensemble: float | None = None
    action_rule: str | None = None
    """A model wrapper's per-episode post-processing of each executed action (:mod:`vla_eval.actions.wrapper_rules`)."""
    video_camera: str | None = None
    reset_options: dict[str, Any] = field(default_factory=dict)
    success_rule: str = "first_success"
    render: str = "on_demand"
    """``on_demand``: envs draw only what the policy or the video will look at; ``eager``: every camera
    every step (the escape hatch the parity tests compare against)."""
    video_stride: int | None = None
    """Keep a video frame every this many steps; ``None``: 2 when rendering on demand (half the frame
    rate, half the video camera's renders), 1 when eager or for an env that renders every step anyway."""

    def __post_init__(self) -> None:
        from vla_eval.sims.contract import RENDER_MODES

        if self.render not in RENDER_MODES:
            raise ValueError(f"render {self.render!r}: expected one of {list(RENDER_MODES)}")
        if self.video_stride is not None and self.video_stride < 1:
            raise ValueError(f"video_stride {self.video_stride}: expected a positive number of steps")

    @property
    def frame_stride(self) -> int:
        if self.video_stride is not None:
            return self.video_stride
        return 2 if self.render == "on_demand" else 1


def policy_cameras(policy: Any, env_cameras: tuple[str, ...]) -> tuple[str, ...]:
    """The cameras ``policy`` looks at, in the env's order: its ``cameras_needed`` (``None`` or absent:
    every camera), none for a policy that takes no images."""
    if not getattr(policy, "needs_images", True):
        return ()
    wanted = getattr(policy, "cameras_needed", None)
    if wanted is None:
        return tuple(env_cameras)
    if isinstance(wanted, str):
        wanted = (wanted,)
    return tuple(c for c in env_cameras if c in set(wanted))


def state_digest(obs: dict[str, Any]) -> str:
    """Hash of the final proprio state: equal digests mean bit-identical rollouts."""
    h = hashlib.sha256()
    for key in sorted(obs.get("state", {})):
        h.update(key.encode())
        h.update(np.ascontiguousarray(obs["state"][key]).tobytes())
    return h.hexdigest()[:16]


def error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"[:2000]


def failed_record(settings: EpisodeSettings, item: PlanItem, error: str, attempts: int = 1) -> EpisodeRecord:
    """The record of an episode that never ran because its env or worker failed."""
    return EpisodeRecord(
        run_id=settings.run_id,
        suite=settings.suite,
        task=item.task,
        split=item.split,
        episode_index=item.episode_index,
        init_state_id=item.init_state_id,
        seed=item.seed,
        success=False,
        steps=0,
        termination="env_error",
        error=error,
        attempts=attempts,
        finished_at=now_iso(),
        success_rule="final_step" if settings.success_rule == "final_step" else "first_success",
    )


class LazyRenderError(RuntimeError):
    """A lazy picture was read after the env stepped on: it would show a state the policy was not asked about."""


class _LazyViews:
    """The pictures of one observation that were not drawn on its step, drawn on first read.

    Shared by the ``images`` / ``depth`` / ``camera_params`` mappings of that observation: one
    ``render_observation`` per camera gives all three, converted to the policy's orientation
    exactly as an eagerly drawn observation is.
    """

    def __init__(self, ep: "_Episode", cameras: tuple[str, ...]):
        self.ep, self.cameras, self.version = ep, cameras, ep.obs_version
        self._drawn: dict[str, dict[str, Any]] = {}

    def view(self, key: str, cam: str) -> Any:
        if cam not in self._drawn:
            self._drawn[cam] = self.ep.draw_late(cam, self.version)
        try:
            return self._drawn[cam][key][cam]
        except KeyError:
            raise KeyError(cam) from None


class LazyCameraMap(Mapping):
    """``obs["images"]`` (or ``depth`` / ``camera_params``) for a policy with ``lazy_images``.

    Keys are known without drawing (``in``, ``keys()``, ``len``); reading a camera's value draws it
    the first time. Valid until the env's next step (:class:`LazyRenderError` after that).
    """

    def __init__(self, key: str, drawn: Mapping[str, Any], views: _LazyViews):
        self._key, self._have, self._views = key, dict(drawn), views
        self._order = tuple(dict.fromkeys([*self._have, *views.cameras]))

    def __getitem__(self, cam: str) -> Any:
        if cam in self._have:
            return self._have[cam]
        if cam not in self._views.cameras:
            raise KeyError(cam)
        return self._views.view(self._key, cam)

    def __contains__(self, cam: object) -> bool:
        return cam in self._order  # Mapping's default would read the value, i.e. draw it

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        lazy = [c for c in self._order if c not in self._have]
        return f"LazyCameraMap({self._key!r}, drawn={sorted(self._have)}, on_read={lazy})"


class _Episode:
    """Mutable state of one episode inside a lock-step batch."""

    def __init__(self, env, item: PlanItem, settings: EpisodeSettings, frames: list | None):
        self.env, self.item, self.frames = env, item, frames
        self.max_steps = settings.max_steps[item.task]
        self.final_step = settings.success_rule == "final_step"
        self.video_camera = settings.video_camera
        self.obs: dict[str, Any] = {}
        self.instruction = ""
        self.current_instruction = ""
        self.executor = ChunkExecutor(settings.replan_steps, settings.temporal_ensemble)
        self.space: ActionSpace = LIBERO_DELTA_EEF
        """The action space of the chunks queued in the executor: actions stay in the policy's space until they are
        executed, so ensembling averages what the model predicted and a wrapper rule reads the model's numbers."""
        self.rule: ActionRule | None = None
        self.rule_name = settings.action_rule
        self.stop_after_step = False
        self.stats = dict(
            steps=0, policy_calls=0, policy_time_s=0.0, sim_time_s=0.0, parse_failures=0, outputs_checked=0
        )
        self.extras: dict[str, Any] = {}
        self.late_render_s = 0.0
        self.success = False
        self.termination: str | None = None
        self.error: str | None = None
        self.env_ok = True
        self.t0 = time.perf_counter()
        self.conversion: ImageConversion | None = None
        self._video_view: ImageConversion | None = None
        self.on_demand = settings.render == "on_demand" and supports_on_demand(env)
        self.frame_stride = settings.frame_stride if self.on_demand else (settings.video_stride or 1)
        self.policy_cams: tuple[str, ...] = ()
        self.lazy = False
        self.obs_version = 0
        self._requested: tuple[str, ...] | None = None
        if frames is not None and settings.video_camera:
            self.extras["video_frame_stride"] = self.frame_stride

    def bind_orientation(self, policy: Policy) -> None:
        """Pick the image conversion from the env's declared origin to the policy's declared orientation."""
        try:
            self.conversion = conversion_for(self.env, policy)
            self._video_view = conversion(_origin(self.env), "upright")  # videos show the true view
        except Exception as exc:
            self.fail("policy_error", f"image orientation: {error_text(exc)}")
            return
        if self.conversion is not None:
            self.extras["image_conversion"] = self.conversion.describe()
        if self.rule_name:
            try:
                self.rule = make_rule(self.rule_name, self.env)
            except ValueError as exc:
                self.fail("policy_error", f"execution.action_rule: {exc}")
                return
            self.extras["action_rule"] = self.rule.name
        if self.on_demand:
            self.policy_cams = policy_cameras(policy, tuple(self.env.unwrapped.cameras))
            # an env whose late picture differs from the step's own (LIBERO) keeps drawing before the step
            self.lazy = bool(getattr(policy, "lazy_images", False)) and bool(
                getattr(self.env.unwrapped, "late_render_exact", True)
            )

    def request_render(self, query: bool, frame_at: int | None) -> None:
        """Before a step: ask the env to draw the policy's cameras if the policy is queried after it,
        and the video camera if the step's frame is kept (``frame_at``: the step count after it; None
        for a settle step, whose frame is never kept)."""
        if not self.on_demand or not self.env_ok:
            return
        cams = set(self.policy_cams) if query and not self.lazy else set()
        keep = frame_at is not None and frame_at % self.frame_stride == 0
        if self.frames is not None and self.video_camera and keep:
            cams.add(self.video_camera)
        wanted = tuple(c for c in self.env.unwrapped.cameras if c in cams)
        if wanted != self._requested:
            try:
                self.env.unwrapped.set_render_cameras(wanted)
            except Exception as exc:
                self.fail("env_error", error_text(exc))
                return
            self._requested = wanted

    def release_render(self) -> None:
        """Hand the env back drawing every camera, as any caller other than this rollout expects."""
        if self.on_demand and self.env_ok and self._requested is not None:
            try:
                self.env.unwrapped.set_render_cameras(None)
            except Exception:
                pass

    def will_query(self) -> bool:
        """After the action just popped: whether the policy is asked again before the next step.
        An episode that reaches its step limit on this step is never asked again."""
        return self.executor.needs_chunk() and self.stats["steps"] + 1 < self.max_steps

    @property
    def active(self) -> bool:
        return self.termination is None

    def fail(self, termination: str, error: str) -> None:
        self.termination, self.error, self.success = termination, error, False
        if termination == "env_error":
            self.env_ok = False

    def reset(self, options: dict[str, Any] | None) -> None:
        t = time.perf_counter()
        self.obs_version += 1
        try:
            self.obs, info = self.env.reset(seed=self.item.seed, options=options or None)
        except Exception as exc:
            self.fail("env_error", error_text(exc))
            return
        finally:
            self.stats["sim_time_s"] += time.perf_counter() - t
        self.instruction = str(self.obs.get("instruction", ""))
        self.current_instruction = self.instruction
        self.success = bool(info.get("success", False))

    def step(self, action: np.ndarray, counted: bool = True) -> None:
        t = time.perf_counter()
        self.obs_version += 1
        try:
            self.obs, _, _, _, info = self.env.step(np.asarray(action, dtype=np.float32))
        except Exception as exc:
            self.fail("env_error", error_text(exc))
            return
        finally:
            self.stats["sim_time_s"] += time.perf_counter() - t
        self.success = bool(info.get("success", False))
        if counted:
            self.stats["steps"] += 1
            self.grab_frame()
            self.settle_outcome()
            if self.stop_after_step and self.active:
                self.termination = "success" if self.success else "policy_terminated"

    def env_action(self, raw: np.ndarray) -> np.ndarray | None:
        """The popped action (policy space) as the env's action, through the wrapper rule if there is one.

        A terminate request ends the episode after this step, judged on it (SimplerEnv's evaluator steps the env
        with the terminating action, then stops: ``maniskill2_evaluator.py`` L110-126); before the last subtask of a
        two-subtask task it advances the subtask instead (L115-119)."""
        env_space = getattr(self.env.unwrapped, "native_action_space", LIBERO_DELTA_EEF)
        try:
            if self.rule is None:
                return to_env_actions(raw[None], self.space, env_space)[0]
            out = self.rule.apply(raw)
            action = to_env_actions(out.action[None], self.rule.out_space, env_space)[0]
        except PolicyOutputError as exc:
            self.fail("policy_error", f"invalid policy output: {exc}")
            return None
        if out.terminate:
            env = self.env.unwrapped
            if hasattr(env, "is_final_subtask") and not env.is_final_subtask():
                env.advance_to_next_subtask()
                self.extras.setdefault("policy_advanced_subtask", []).append(self.stats["steps"])
            else:
                self.stop_after_step = True
        return action

    def settle_outcome(self) -> None:
        """first_success: stop at the first successful step. final_step: run to the step limit and let
        the last step's success decide (a success earlier in the episode does not count)."""
        if self.success and not self.final_step:
            self.termination = "success"
        elif self.stats["steps"] >= self.max_steps:
            self.termination = "success" if self.success else "timeout"

    def grab_frame(self) -> None:
        if self.frames is None or not self.video_camera or self.stats["steps"] % self.frame_stride:
            return
        frame = self.obs.get("images", {}).get(self.video_camera)
        if frame is not None:
            self.frames.append(self._video_view.image(frame) if self._video_view is not None else frame)

    def _complete_images(self) -> None:
        """Fallback for a query nobody foresaw (an instruction switch resets the chunk): draw the
        policy's cameras now. Envs that render after the physics step (all but LIBERO) give the same
        pictures; LIBERO's would be taken after the step's last substep instead of its first."""
        if not self.on_demand or not self.env_ok:
            return
        have = self.obs.get("images", {})
        missing = [c for c in self.policy_cams if c not in have]
        if not missing:
            return
        t = time.perf_counter()
        try:
            views = self.env.unwrapped.render_observation(missing)
        except Exception as exc:
            self.fail("env_error", error_text(exc))
            return
        finally:
            self.stats["sim_time_s"] += time.perf_counter() - t
        self.obs = dict(self.obs)
        for key, per_cam in views.items():
            self.obs[key] = {**self.obs.get(key, {}), **per_cam}
        self.extras["late_renders"] = self.extras.get("late_renders", 0) + 1

    def draw_late(self, cam: str, version: int) -> dict[str, Any]:
        """One camera of the current state, drawn now for a lazy read and converted to the policy's view."""
        if version != self.obs_version or not self.env_ok:
            raise LazyRenderError(
                f"obs['images'][{cam!r}] read after the env stepped on; read lazy images inside the predict call"
            )
        t = time.perf_counter()
        try:
            views = self.env.unwrapped.render_observation([cam])
        except Exception as exc:
            self.fail("env_error", error_text(exc))
            raise LazyRenderError(f"drawing camera {cam!r} failed: {error_text(exc)}") from exc
        finally:
            elapsed = time.perf_counter() - t
            self.stats["sim_time_s"] += elapsed
            self.late_render_s += elapsed
        self.extras["lazy_renders"] = self.extras.get("lazy_renders", 0) + 1
        return self.conversion.observation(views) if self.conversion is not None else views

    def _lazy_obs(self, o: dict[str, Any]) -> dict[str, Any]:
        """``o`` with the policy's cameras not drawn on this step behind :class:`LazyCameraMap` s."""
        have = self.obs.get("images", {})
        missing = tuple(c for c in self.policy_cams if c not in have)
        if not missing or not self.env_ok:
            return o
        views = _LazyViews(self, missing)
        contract = contract_of(self.env)
        keys = ("images", "depth", CAMERA_PARAMS_KEY) if contract is not None and contract.depth else ("images",)
        for key in keys:
            o[key] = LazyCameraMap(key, o.get(key) or {}, views)
        return o

    def policy_obs(self, needs_privileged: bool) -> dict[str, Any]:
        if not self.lazy:
            self._complete_images()
        o = self.conversion.observation(self.obs) if self.conversion is not None else dict(self.obs)
        if o is self.obs:
            o = dict(self.obs)
        if self.lazy:
            o = self._lazy_obs(o)
        if needs_privileged and self.env_ok:
            o["privileged"] = self.env.unwrapped.privileged_state()
        return o

    def record(self, settings: EpisodeSettings) -> EpisodeRecord:
        item = self.item
        return EpisodeRecord(
            run_id=settings.run_id,
            suite=settings.suite,
            task=item.task,
            split=item.split,
            episode_index=item.episode_index,
            init_state_id=item.init_state_id,
            seed=item.seed,
            instruction=self.instruction,
            success=self.success,
            termination=self.termination or "timeout",
            success_rule="final_step" if self.final_step else "first_success",
            error=self.error,
            final_state_digest=state_digest(self.obs) if self.env_ok else "",
            wall_time_s=time.perf_counter() - self.t0,
            finished_at=now_iso(),
            extras=self.extras,
            **self.stats,
        )


def run_episodes(
    envs: list,
    policy: Policy,
    items: list[PlanItem],
    settings: EpisodeSettings,
    frames: list[list | None] | None = None,
    reset_options: list[dict[str, Any] | None] | None = None,
    progress: dict[tuple, dict[str, Any]] | None = None,
) -> list[tuple[EpisodeRecord, bool]]:
    """Roll out ``items`` on ``envs`` in lock-step; returns (record, env still usable) per episode.

    Row ``i`` is policy slot ``i`` (see :class:`~vla_eval.policies.base.Policy`): a
    slot-aware policy is asked only for the episodes that need actions, tagged with their
    slots; any other policy sees the whole batch (finished episodes keep their last
    observation and their actions are dropped), so its per-env state keeps a stable index.
    :class:`~vla_eval.errors.RetryEpisode` from the policy propagates: the episodes are
    rerun elsewhere rather than recorded. ``progress`` (item key -> live step counters) lets a
    watchdog thread that ends a stuck batch record how far each episode got.
    """
    frames = frames or [None] * len(items)
    reset_options = reset_options or [settings.reset_options] * len(items)
    eps = [_Episode(env, item, settings, f) for env, item, f in zip(envs, items, frames)]
    if progress is not None:
        progress.update({ep.item.key: ep.stats for ep in eps})
    for ep in eps:
        ep.bind_orientation(policy)
    for ep, opts in zip(eps, reset_options):
        if not ep.active:
            continue
        last = settings.settle_steps == 0
        ep.request_render(query=last, frame_at=0 if last else None)  # settle steps render nothing
        ep.reset(opts)
        for i in range(settings.settle_steps):
            if ep.active:
                last = i == settings.settle_steps - 1
                ep.request_render(query=last, frame_at=0 if last else None)
                ep.step(np.asarray(settings.settle_action), counted=False)
        if ep.active:
            ep.grab_frame()
            ep.settle_outcome()
    try:
        reset_policy(policy, [ep.instruction for ep in eps], [ep.item.seed for ep in eps], range(len(eps)))
    except RetryEpisode:
        raise
    except Exception as exc:
        for ep in eps:
            if ep.active:
                ep.fail("policy_error", f"policy reset failed: {error_text(exc)}")
    while any(ep.active for ep in eps):
        _follow_instruction_switches(eps, policy)
        if any(ep.active and ep.executor.needs_chunk() for ep in eps):
            _refill(eps, policy, settings)
        popped = [(ep, ep.env_action(ep.executor.pop()[0])) for ep in eps if ep.active and ep.executor.can_pop()]
        popped = [(ep, action) for ep, action in popped if action is not None]
        # a policy that is not slot-aware sees every row whenever any row is queried
        any_query = not policy.slot_aware and any(ep.will_query() for ep, _ in popped)
        for ep, action in popped:
            ep.request_render(query=any_query or ep.will_query(), frame_at=ep.stats["steps"] + 1)
            if ep.active:
                ep.step(action)
    for ep in eps:
        ep.release_render()
    return [(ep.record(settings), ep.env_ok) for ep in eps]


def run_episode(env, policy: Policy, item: PlanItem, settings: EpisodeSettings, frames: list | None = None):
    """One episode on its own (a batch of one)."""
    return run_episodes([env], policy, [item], settings, [frames])[0]


def _follow_instruction_switches(eps: list[_Episode], policy: Policy) -> None:
    """A two-subtask task (SimplerEnv's apple into drawer) changes ``obs["instruction"]`` mid-episode.

    SimplerEnv's model wrappers (``simpler_env/policies/octo/octo_model.py`` ``step``) reset
    the policy when the instruction changes; the harness does the same for the episode whose
    instruction changed, drops the actions still queued for the old subtask, and notes the
    step on the episode. A policy that is not slot-aware can be reset alone only in a batch
    of one; in a larger batch it sees the new instruction in the observation only, and the
    episode says so.
    """
    changed = [
        ep
        for ep in eps
        if ep.active and "instruction" in ep.obs and str(ep.obs["instruction"]) != ep.current_instruction
    ]
    if not changed:
        return
    for ep in changed:
        ep.current_instruction = str(ep.obs["instruction"])
        ep.executor.reset()
        if ep.rule is not None:
            ep.rule.reset()  # the wrappers reset on a new instruction (octo_model.py step L143-146)
        ep.extras.setdefault("instruction_switches", []).append(
            {"step": ep.stats["steps"], "instruction": ep.current_instruction}
        )
    if not policy.slot_aware and len(eps) > 1:
        for ep in changed:
            ep.extras["instruction_switch_reset"] = (
                "not reset: policy is not slot-aware in a batch; new instruction in obs only"
            )
        return
    try:
        reset_policy(
            policy,
            [ep.current_instruction for ep in changed],
            [ep.item.seed for ep in changed],
            [eps.index(ep) for ep in changed],
        )
    except RetryEpisode:
        raise
    except Exception as exc:
        for ep in changed:
            ep.fail("policy_error", f"policy reset on the instruction switch failed: {error_text(exc)}")


def _refill(eps: list[_Episode], policy: Policy, settings: EpisodeSettings) -> None:
    needing = [ep for ep in eps if ep.active and ep.executor.needs_chunk()]
    rows = needing if policy.slot_aware else eps
    obs_batch = [ep.policy_obs(policy.needs_privileged) for ep in rows]
    drawn_before = sum(ep.late_render_s for ep in rows)
    t = time.perf_counter()
    try:
        chunk = predict_policy(policy, obs_batch, [eps.index(ep) for ep in rows])
    except RetryEpisode:
        raise
    except Exception as exc:
        for ep in needing:
            if ep.env_ok:  # a lazy draw that failed already ended its episode as env_error
                ep.fail("policy_error", error_text(exc))
        return
    finally:
        elapsed = time.perf_counter() - t - (sum(ep.late_render_s for ep in rows) - drawn_before)
        for ep in needing:
            ep.stats["policy_time_s"] += elapsed
            ep.stats["policy_calls"] += 1
    try:
        chunk = normalize_chunk(chunk, len(rows))
        space = chunk.space
        actions = validate_chunk(chunk, batch_size=len(rows), action_dim=space.dim, per_row=True)
    except PolicyOutputError as exc:
        for ep in needing:
            ep.fail("policy_error", f"invalid policy output: {exc}")
        return
    for i, ep in enumerate(rows):
        if ep not in needing:
            continue
        if chunk.extras and i < len(chunk.extras):
            _merge_extras(ep, chunk.extras[i])
        row = actions[i]
        if not np.all(np.isfinite(row)):
            ep.fail("policy_error", "invalid policy output: actions contain NaN or infinite values")
            continue
        try:
            if ep.rule is not None:
                ep.rule.check(row[0])
            elif ep.executor.can_pop() and space != ep.space and ep.executor.temporal_ensemble is not None:
                raise PolicyOutputError(f"the action space changed within an ensembled episode ({ep.space} -> {space})")
            ep.space = space
            ep.executor.add_chunk(row[None])
        except PolicyOutputError as exc:
            ep.fail("policy_error", f"invalid policy output: {exc}")
            continue


def _origin(env) -> str:
    from vla_eval.sims.contract import image_origin_of

    return image_origin_of(env)


def _merge_extras(ep: _Episode, new: dict[str, Any]) -> None:
    """Fold one call's extras into the episode: counters add up, texts are kept (bounded)."""
    ep.stats["parse_failures"] += int(new.get("parse_failure", 0))
    ep.stats["outputs_checked"] += int("parse_failure" in new)
    for key, value in new.items():
        if key == "parse_failure":
            continue
        bucket = ep.extras.setdefault(key, [])
        if len(bucket) < 50:
            bucket.append(value)
