"""The comparison and stage attribution of ``vla-eval conformance`` (no simulator)."""

from __future__ import annotations

from vla_eval.conformance.report import compare, episode_stage
from vla_eval.record import EpisodeRecord


def _rec(task="t", i=0, success=True, **kw) -> EpisodeRecord:
    base = dict(
        run_id="r",
        suite="s",
        task=task,
        split="in_domain",
        episode_index=i,
        init_state_id=i,
        seed=i,
        success=success,
        steps=10,
        termination="success" if success else "timeout",
    )
    base.update(kw)
    return EpisodeRecord(**base)


def test_first_broken_stage_is_named():
    assert episode_stage(_rec()) is None
    assert episode_stage(_rec(success=False, extras={"oracle_stage": ["preprocess"]}, parse_failures=1)) == "preprocess"
    assert episode_stage(_rec(success=False, parse_failures=2, outputs_checked=3)) == "parse"
    assert episode_stage(_rec(success=False, extras={"bridge_failure": [0, 1]})) == "convert"
    assert (
        episode_stage(_rec(success=False, extras={"oracle_action_mismatch": [1], "oracle_stage": ["convert"]}))
        == "convert"
    )
    assert episode_stage(_rec(success=False, termination="policy_error")) == "preprocess"  # failed before any output
    assert (
        episode_stage(_rec(success=False, termination="policy_error", extras={"oracle_text": ["<output>"]}))
        == "convert"
    )
    assert episode_stage(_rec(success=False)) == "env"


def test_gap_margin_and_not_applicable_tasks():
    expert = [_rec("a", i) for i in range(10)] + [_rec("b", i) for i in range(10)] + [_rec("c", i) for i in range(4)]
    oracle = (
        [_rec("a", i, success=i != 0) for i in range(10)]
        + [_rec("b", i, success=i > 2, parse_failures=int(i <= 2)) for i in range(10)]
        + [_rec("c", i, success=False, extras={"oracle_stage": ["oracle"]}) for i in range(4)]
    )
    rep = compare("s", "p", oracle, expert, margin_points=10.0, tasks=["a", "b", "c"])
    rows = {r.task: r for r in rep.rows}
    assert rows["a"].gap_points == 10.0 and rows["a"].stages["env"] == 1
    assert rows["b"].gap_points == 30.0 and rows["b"].stages["parse"] == 3
    assert not rows["c"].applicable  # the oracle could not phrase it: left out of the suite gap
    assert abs(rep.suite_gap_points - 20.0) < 1e-9
    assert not rep.passed and rep.failing_stage() == "parse"
    md = rep.markdown()
    assert "**over margin**" in md and "FAIL" in md and "n/a" in md
    assert compare("s", "p", oracle[:10], expert, 10.0, ["a"]).passed  # 10 points is within a 10-point margin


def test_an_oracle_episode_without_its_expert_twin_fails_the_comparison():
    rep = compare("s", "p", [_rec("a", 0), _rec("a", 1)], [_rec("a", 0)], 10.0, ["a"])
    assert rep.unmatched == 1 and not rep.passed
