"""The versioned, typed record of one finished episode (docs/architecture.md §6).

Every row carries ``schema_version`` so readers of old result folders know what they hold.
Fields that depend on the machine (timings, worker) are kept apart from the ones that
must be identical across worker counts (:data:`DETERMINISTIC_FIELDS`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Termination = Literal[
    "success", "timeout", "policy_terminated", "policy_error", "policy_timeout", "episode_timeout", "env_error"]

POLICY_FAILURES = ("policy_error", "policy_timeout", "episode_timeout")
"""Terminations that are the policy's fault (or a wall-clock overrun): failures, and errors for ``check``."""

ERROR_TERMINATIONS = (*POLICY_FAILURES, "env_error")

DETERMINISTIC_FIELDS = (
    "task",
    "split",
    "episode_index",
    "init_state_id",
    "seed",
    "success",
    "steps",
    "termination",
    "final_state_digest",
    "instruction",
)


class EpisodeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    suite: str
    task: str
    split: str
    episode_index: int
    init_state_id: int
    seed: int
    instruction: str = ""
    success: bool
    steps: int = Field(ge=0, description="control steps taken by the policy, settle steps excluded")
    termination: Termination
    success_rule: Literal["first_success", "final_step"] = Field(
        default="first_success",
        description="first_success: ended at the first success; final_step: ran to the limit, last step judged",
    )
    error: str | None = None
    policy_calls: int = 0
    policy_time_s: float = 0.0
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    parse_failures: int = 0
    outputs_checked: int = 0
    final_state_digest: str = ""
    video_path: str | None = None
    attempts: int = 1
    finished_at: str | None = Field(default=None, description="UTC time the episode ended (ISO 8601)")
    extras: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task, self.split, self.episode_index)

    def deterministic_view(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in DETERMINISTIC_FIELDS}
