"""The shipped reference checkpoints: load without pickle, act deterministically, look at the images."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vla_eval.errors import ConfigError  # noqa: E402
from vla_eval.execution.plan import PlanItem  # noqa: E402
from vla_eval.execution.rollout import EpisodeSettings, run_episode  # noqa: E402
from vla_eval.policies import POLICIES  # noqa: E402
from vla_eval.policies.reference import CHECKPOINT_DIR, ReferencePolicy  # noqa: E402
from vla_eval.sims.tabletop.env import TabletopEnv  # noqa: E402


@pytest.fixture(scope="module")
def obs():
    env = TabletopEnv("pick_place_cube")
    o, _ = env.reset(seed=3)
    env.close()
    return o


def test_both_checkpoints_ship_as_safetensors_with_metadata():
    for name in ("early", "final"):
        weights = CHECKPOINT_DIR / f"{name}.safetensors"
        assert weights.is_file() and (CHECKPOINT_DIR / f"{name}.json").is_file()
        assert weights.stat().st_size < 5_000_000
        assert weights.read_bytes()[8:9] == b"{"  # safetensors: u64 header length, then a JSON header (no pickle)


def test_registered_and_acts_deterministically(obs):
    a = POLICIES.create("reference", checkpoint="final")
    b = ReferencePolicy(checkpoint="final")
    a.reset([obs["instruction"]]), b.reset([obs["instruction"]])
    first = a.predict([obs]).actions
    assert first.shape == (1, a.cfg.chunk, 7) and np.all(np.abs(first) <= 1.0)
    np.testing.assert_array_equal(first, a.predict([obs]).actions)
    np.testing.assert_array_equal(first, b.predict([obs]).actions)
    assert a.describe()["weights_sha256_16"] == a.meta["weights_sha256"]


def test_early_and_final_differ_and_images_matter(obs):
    final, early = ReferencePolicy("final"), ReferencePolicy("early")
    assert not np.allclose(final.predict([obs]).actions, early.predict([obs]).actions)
    dark = {**obs, "images": {k: (v // 3) for k, v in obs["images"].items()}}
    assert np.abs(final.predict([obs]).actions - final.predict([dark]).actions).max() > 0.05


def test_execute_steps_and_bad_checkpoints(tmp_path):
    assert ReferencePolicy("final", execute_steps=1).predict is not None
    with pytest.raises(ConfigError, match="execute_steps"):
        ReferencePolicy("final", execute_steps=99)
    with pytest.raises(ConfigError, match="does not exist"):
        ReferencePolicy(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="expected 'early', 'final'"):
        ReferencePolicy("latest.pt")


@pytest.mark.slow
def test_same_episode_twice_gives_identical_records():
    item = PlanItem(task="push_block", split="in_domain", episode_index=0, init_state_id=0, seed=11)
    settings = EpisodeSettings(
        run_id="t",
        suite="tabletop_basic",
        max_steps={"push_block": 60},
        settle_steps=0,
        settle_action=(0.0,) * 6 + (-1.0,),
    )
    records = []
    for _ in range(2):
        env = TabletopEnv("push_block")
        records.append(run_episode(env, ReferencePolicy("final"), item, settings)[0])
        env.close()
    assert records[0].final_state_digest == records[1].final_state_digest
    assert (records[0].steps, records[0].success) == (records[1].steps, records[1].success)


def test_run_fingerprint_follows_the_shipped_weights_not_the_alias():
    """`checkpoint=early` is a word; the run record must identify the weights file it names."""
    from vla_eval import provenance
    from vla_eval.execution.runner import checkpoint_hash
    from vla_eval.policies.reference import CHECKPOINT_DIR
    from vla_eval.policy_config import resolve_policy

    early = checkpoint_hash(resolve_policy("reference", ["checkpoint=early"]))
    final = checkpoint_hash(resolve_policy("reference", ["checkpoint=final"]))
    default = checkpoint_hash(resolve_policy("reference"))
    assert early == provenance.checkpoint_fingerprint(str(CHECKPOINT_DIR / "early.safetensors"))
    assert early != final and default == final  # the default is the final checkpoint, not "no checkpoint"
    assert early != provenance.checkpoint_fingerprint("early")  # not the hash of the string
