"""OpenVLA-style adapter on a tiny random Llava checkpoint: real load -> preprocess -> generate -> decode -> convert."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_eval.actions import to_env_actions
from vla_eval.errors import ConfigError
from vla_eval.policies import POLICIES
from vla_eval.policies.base import LIBERO_DELTA_EEF
from vla_eval.policies.openvla import BIN_CENTERS, ActionStats, normalized_to_tokens, tokens_to_normalized, unnormalize


def test_bins_follow_design():
    V = 32000
    assert BIN_CENTERS.shape == (255,)
    np.testing.assert_allclose(
        tokens_to_normalized(np.array([V - 1, V - 255, V - 256, V - 400]), V), BIN_CENTERS[[0, 254, 254, 254]]
    )
    a = np.array([-1.0, -0.5, 0.0, 0.37, 0.999])
    back = tokens_to_normalized(normalized_to_tokens(a, V), V)
    assert np.all(np.abs(back - a) <= 2.0 / 255 + 1e-12)  # within one bin


def test_unnormalize_q01_q99_with_mask():
    s = ActionStats(q01=[-2.0, 0.0], q99=[2.0, 10.0], mask=[True, False])
    np.testing.assert_allclose(unnormalize(np.array([0.5, 0.5]), s), [1.0, 0.5])
    np.testing.assert_allclose(
        unnormalize(np.array([-1.0, 1.0]), ActionStats(q01=[-2.0, 0.0], q99=[2.0, 10.0])), [-2.0, 10.0]
    )


# tests/policies/tiny_models.py writes these statistics into the tiny checkpoint
TINY_STATS = {
    "q01": [-0.5, -0.6, -0.7, -0.1, -0.2, -0.3, 0.0],
    "q99": [0.5, 0.6, 0.7, 0.1, 0.2, 0.3, 1.0],
    "mask": [True, True, True, True, True, True, False],
}


def _reference_decode(tokens, vocab_size, st):
    """OpenVLA's predict_action written out (prismatic/extern/hf/modeling_prismatic.py):
    bins = linspace(-1, 1, 256), centres of consecutive bins, index clip(V - token - 1, 0, 254),
    then 0.5 (a + 1)(q99 - q01) + q01 where mask; the gripper (unmasked, [0, 1] dataset space)
    is binarised at 0.5 as the LIBERO client's normalize_gripper_action(binarize=True) does."""
    bins = np.linspace(-1, 1, 256)
    centres = (bins[:-1] + bins[1:]) / 2
    a = centres[np.clip(vocab_size - np.asarray(tokens) - 1, 0, 254)]
    q01, q99 = np.array(st["q01"]), np.array(st["q99"])
    out = np.where(st["mask"], 0.5 * (a + 1) * (q99 - q01) + q01, a)
    out[-1] = 1.0 if out[-1] > 0.5 else 0.0
    return out


def test_reference_decode_hand_values():
    V = 32000
    # token V-1 -> bin 0, centre -1 + 1/255; token V-255 -> bin 254, centre 1 - 1/255
    out = _reference_decode([V - 1, V - 255, V - 128, V - 1, V - 1, V - 1, V - 255], V, TINY_STATS)
    assert out[0] == pytest.approx(0.5 * (1 / 255) * 1.0 - 0.5)
    assert out[1] == pytest.approx(0.5 * (2 - 1 / 255) * 1.2 - 0.6)
    assert out[2] == pytest.approx(0.5 * (1 + (-1 + 2 * 127.5 / 255)) * 1.4 - 0.7)
    assert out[-1] == 1.0


def _policy(ckpt, **kw):
    kw.setdefault("unnorm_key", "libero_spatial_no_noops")
    return POLICIES.create("openvla", checkpoint=str(ckpt), **kw)


def test_generate_restricted_to_action_tokens_and_decode(tiny_llava):
    policy = _policy(tiny_llava)
    rng = np.random.default_rng(0)
    obs = [
        {"images": {"agentview": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)}, "instruction": f"Pick Up {i}"}
        for i in range(3)
    ]
    policy.reset([o["instruction"] for o in obs])
    chunk = policy.predict(obs)
    assert chunk.actions.shape == (3, 1, 7)
    lo, hi = policy.action_ids
    for b, ex in enumerate(chunk.extras):
        toks = np.array(ex["action_tokens"])
        assert toks.shape == (7,) and np.all((toks >= lo) & (toks <= hi))
        np.testing.assert_allclose(chunk.actions[b, 0], _reference_decode(toks, policy.vocab_size, TINY_STATS))
        q01, q99 = np.array(policy.stats.q01), np.array(policy.stats.q99)
        assert np.all(chunk.actions[b, 0, :6] >= q01[:6] - 1e-9) and np.all(chunk.actions[b, 0, :6] <= q99[:6] + 1e-9)
    # harness conversion, as OpenVLA's LIBERO client does it: normalize_gripper_action maps [0, 1] to
    # [-1, 1] and takes the sign, invert_gripper_action flips it (LIBERO: -1 open, +1 close)
    env = to_env_actions(chunk.actions, chunk.space, LIBERO_DELTA_EEF)
    np.testing.assert_array_equal(env[..., -1], -np.sign(2 * chunk.actions[..., -1] - 1))


def test_prompt_and_preprocessing_defaults(tiny_llava):
    policy = _policy(tiny_llava)
    assert policy.prompt("Open The Drawer") == "In: What action should the robot take to open the drawer?\nOut:"
    d = policy.describe()
    assert d["unnorm_key"] == "libero_spatial_no_noops"
    img = d["config"]["image"]
    assert img["chain"] == "openvla_libero" and img["center_crop"] is True and not img["flip_180"]
    steps = d["image_chain"]["steps"]
    assert [s.split()[0] for s in steps] == ["jpeg", "resize", "center"] and "lanczos3" in steps[1]
    assert d["config"]["image_orientation"] == "libero_rot180" and policy.image_orientation == "libero_rot180"
    assert d["config"]["trust_remote_code"] is False


def test_batched_equals_single(tiny_llava):
    policy = _policy(tiny_llava)
    rng = np.random.default_rng(1)
    obs = [
        {"images": {"agentview": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)}, "instruction": t}
        for t in ("go", "pick up the red cube and place it on the plate")
    ]
    policy.reset([o["instruction"] for o in obs])
    both = policy.predict(obs)
    policy.reset([obs[0]["instruction"]])
    alone = policy.predict(obs[:1])
    assert both.extras[0]["action_tokens"] == alone.extras[0]["action_tokens"]


def test_unnorm_key_errors(tiny_llava, tmp_path):
    with pytest.raises(ConfigError, match="set unnorm_key"):
        POLICIES.create("openvla", checkpoint=str(tiny_llava))
    with pytest.raises(ConfigError, match="available"):
        _policy(tiny_llava, unnorm_key="libero_goal")
    stats = {"only": {"action": {"q01": [0.0] * 7, "q99": [1.0] * 7}}}
    f = tmp_path / "stats.json"
    f.write_text(json.dumps(stats))
    p = POLICIES.create("openvla", checkpoint=str(tiny_llava), norm_stats_path=str(f), unnorm_key=None)
    assert p.unnorm_key == "only"


def test_stats_from_dataset_statistics_file(tmp_path):
    pytest.importorskip("transformers")
    from tiny_models import build_tiny_llava

    ckpt = build_tiny_llava(tmp_path / "ck", stats_file=True)
    p = POLICIES.create("openvla", checkpoint=str(ckpt), unnorm_key="bridge_orig")
    assert p.stats.q01 == [-1.0] * 7


def test_image_chain_reaches_the_model_and_is_recorded_once_per_episode(tiny_llava):
    from vla_eval.policies.image_preprocess import ImagePreprocess, jpeg_roundtrip, lanczos3_resize

    policy = _policy(tiny_llava)
    img = np.random.default_rng(2).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    obs = [{"images": {"agentview": img}, "instruction": "pick"}]
    policy.reset(["pick"], seeds=[0], slots=["a"])
    first = policy.predict(obs, slots=["a"])
    seen = policy.last_model_images[0]
    assert seen.shape == (224, 224, 3)
    np.testing.assert_array_equal(seen, ImagePreprocess(chain="openvla_libero", center_crop=True).apply(img))
    assert not np.array_equal(seen, lanczos3_resize(jpeg_roundtrip(img, 95, "tf_default"), (224, 224)))  # cropped
    assert first.extras[0]["image_chain"]["chain"] == "openvla_libero"
    assert "area 0.9 (side 0.948683)" in first.extras[0]["image_chain"]["steps"][2]
    assert "image_chain" not in policy.predict(obs, slots=["a"]).extras[0]  # once per episode
    simple = _policy(
        tiny_llava, image={"chain": "simple", "resize": [224, 224], "resample": "lanczos", "center_crop_area": 0.9}
    )
    simple.reset(["pick"])
    assert simple.predict(obs).extras[0]["image_chain"]["chain"] == "simple"
