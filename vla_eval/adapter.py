"""The one contract every policy adapter implements.

A policy sees a *batch* of observations (one per env stepping in lock-step) and
answers with an :class:`~vla_eval.actions.ActionChunk`: ``(B, T, D)`` actions in the policy's own
native space plus a description of that space.  The harness, not the policy,
converts the chunk to the env's control space, so gripper polarity and rotation
conventions are handled in one audited place.

It lives outside ``policies`` so the scripted experts inside each simulator's folder can
subclass :class:`Policy` without the simulators importing the adapter layer.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

from vla_eval.actions.space import LIBERO_DELTA_EEF, ActionChunk, ActionSpace


class Policy(abc.ABC):
    """Base class of every adapter and baseline.

    Class attributes tell the harness what to compute for the policy, so that a
    state-only policy never pays for rendering and only experts see privileged state.

    **Per-episode state (slots).**  Both the lock-step ``--batch-envs`` batch inside one
    worker and the policy server's batches across connections mix rows of *different*
    episodes in one call, and which episodes share a call changes from call to call on the
    server.  A stateful adapter (a plan follower, a temporal ensemble, a seeded RNG, a
    cached instruction) therefore keys its state by *slot*: an opaque hashable id the
    harness gives each live episode.  An adapter that sets ``slot_aware = True`` accepts

    * ``reset(instructions, seeds, slots=[...])``: start new episodes in exactly those
      slots; every other slot's state is left alone;
    * ``predict(obs_batch, slots=[...])``: row ``i`` belongs to ``slots[i]``; rows may be
      any subset of the live slots in any order, and a slot appears at most once;
    * ``release(slots)``: those episodes are over (their connection closed); drop state.

    ``slots=None`` means rows ``0..B-1`` with ``reset`` replacing all state, which is the
    old positional contract.  :class:`SlotStates` implements the bookkeeping.  Callers go
    through :func:`reset_policy` / :func:`predict_policy`, which pass ``slots`` only to
    slot-aware adapters; an adapter without the flag is called positionally as before
    (stateless adapters need nothing), and the server resets it whenever a batch's rows
    differ from the previous call's, which is only correct if it keeps no state across calls.
    """

    slot_aware: bool = False
    stateful: bool = False
    """Set by an adapter that keeps per-episode state between calls (a step counter, a plan, a
    history) without being slot-aware.  The policy server cannot interleave such a policy's
    sessions without restarting each one's episode on the other's turn, so it serves them one
    at a time; a stateless adapter (the default) is batched across sessions."""

    name: str = "policy"
    action_space: ActionSpace = LIBERO_DELTA_EEF
    needs_images: bool = True
    cameras_needed: tuple[str, ...] | None = None
    """The cameras ``predict`` reads (``None``: every camera of the suite); only they are rendered for it."""
    lazy_images: bool = False
    """Set by an adapter that reads ``obs["images"]`` (and ``depth`` / ``camera_params``) only on some calls,
    decided by the observation itself (a planner that re-plans when its plan runs out): it then gets mappings
    that draw a camera on first read, valid until the env's next step, instead of pictures drawn before
    every query (:class:`~vla_eval.execution.rollout.LazyCameraMap`)."""
    needs_depth: bool = False
    needs_privileged: bool = False
    deterministic: bool = True
    image_orientation: str = "upright"
    """The view the checkpoint was trained on (``upright`` | ``libero_rot180``); the harness converts
    each env's images, depth and intrinsics to it (:mod:`vla_eval.sims.orientation`)."""

    def reset(self, instructions: list[str], seeds: list[int] | None = None) -> None:
        """Start new episodes; ``seeds`` makes stochastic policies reproducible per episode.

        Slot-aware adapters take a third argument ``slots`` (see the class docstring)."""

    @abc.abstractmethod
    def predict(self, obs_batch: list[dict[str, Any]]) -> ActionChunk:
        """Map a batch of observations (one dict per env) to an action chunk."""

    @classmethod
    def checkpoint_location(cls, args: dict[str, Any]) -> str | None:
        """Where the weights for these arguments live, for the run's checkpoint fingerprint.

        The driver fingerprints this before any worker loads the model; an adapter whose
        ``checkpoint`` argument is an alias (a shipped name, a default) resolves it here so
        the fingerprint follows the weights, not the word.
        """
        value = args.get("checkpoint")
        return str(value) if value not in (None, "") else None

    def describe(self) -> dict[str, Any]:
        """Configuration recorded once per run (checkpoint, preprocessing, ...)."""
        return {"name": self.name}

    def release(self, slots: Sequence[Hashable]) -> None:
        """Forget the state of finished episodes (slot-aware adapters); default: nothing held."""

    def close(self) -> None:
        """Release models, sockets, ..."""


def reset_policy(policy: Policy, instructions: list[str], seeds: list[int] | None, slots: Sequence[Hashable]) -> None:
    """``policy.reset`` for episodes in ``slots``; positional for adapters that are not slot-aware."""
    if policy.slot_aware:
        policy.reset(instructions, seeds, slots=list(slots))  # type: ignore[call-arg]
    else:
        policy.reset(instructions, seeds)


def predict_policy(policy: Policy, obs_batch: list[dict[str, Any]], slots: Sequence[Hashable]) -> "ActionChunk":
    """``policy.predict`` with each row tagged by its slot (slot-aware adapters only)."""
    if policy.slot_aware:
        return policy.predict(obs_batch, slots=list(slots))  # type: ignore[call-arg]
    return policy.predict(obs_batch)


S = TypeVar("S")


class SlotStates(Generic[S]):
    """Per-slot episode state of a slot-aware adapter.

    ``new(instruction, seed)`` builds one episode's state.  A row whose slot was never reset
    (a caller that skipped ``reset``) starts from its observation's instruction, as the
    positional adapters always did.
    """

    def __init__(self, new: Callable[[str, int | None], S]):
        self._new = new
        self._by_slot: dict[Hashable, S] = {}

    def reset(
        self,
        instructions: Sequence[str],
        seeds: Sequence[int | None] | None = None,
        slots: Sequence[Hashable] | None = None,
    ) -> None:
        if slots is None:
            self._by_slot.clear()
            slots = range(len(instructions))
        if len(slots) != len(instructions):
            raise ValueError(f"reset got {len(instructions)} instructions for {len(slots)} slots")
        seeds = list(seeds) if seeds is not None else [None] * len(instructions)
        for slot, instruction, seed in zip(slots, instructions, seeds):
            self._by_slot[slot] = self._new(str(instruction), seed)

    def rows(self, obs_batch: Sequence[dict[str, Any]], slots: Sequence[Hashable] | None = None) -> list[S]:
        """The state of each row's episode, in row order."""
        slots = range(len(obs_batch)) if slots is None else slots
        if len(slots) != len(obs_batch):
            raise ValueError(f"predict got {len(obs_batch)} observations for {len(slots)} slots")
        if len(set(slots)) != len(slots):
            raise ValueError(f"predict got a slot twice in one batch: {list(slots)}")
        out = []
        for slot, obs in zip(slots, obs_batch):
            if slot not in self._by_slot:
                self._by_slot[slot] = self._new(str(obs.get("instruction", "")), None)
            out.append(self._by_slot[slot])
        return out

    def release(self, slots: Sequence[Hashable]) -> None:
        for slot in slots:
            self._by_slot.pop(slot, None)

    def __getitem__(self, slot: Hashable) -> S:
        return self._by_slot[slot]

    def __len__(self) -> int:
        return len(self._by_slot)
