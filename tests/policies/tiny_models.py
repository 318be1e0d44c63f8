"""Tiny random checkpoints built from configs and saved to a folder, so tests run the real
``from_pretrained`` path with no download (docs/architecture.md §5).  A few MB each, built in < 1 s."""

from __future__ import annotations

import json
from pathlib import Path

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CORPUS = [
    "<think>The cube is left of the gripper, so move left and down.</think>"
    "<output>[[0.12, 0.34], [0.5, 0.55], [0.61, 0.72]]</output>",
    '<output>{"x": 0.5, "y": 0.25, "width": 0.1, "height": 0.2}</output>',
    "pick up the red cube and place it on the plate. Please output the optimal trajectory of the end-effector "
    "to the target object in the format. What action should the robot take to open the drawer? In: Out:",
    '0123456789 [], {} : " . x y width height',
]


def _bpe_tokenizer(specials: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return tok


def build_tiny_qwen(out: Path, seed: int = 0) -> Path:
    """Tiny ``Qwen2_5_VLForConditionalGeneration`` + BPE tokenizer (no chat template: the adapter's
    built-in Qwen2.5-VL template is used) + PIL image processor limited to small images."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    out = Path(out)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe_tokenizer(QWEN_SPECIALS, 420), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.save_pretrained(out)
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            fullatt_block_indexes=[1],
            window_size=112,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(out)
    return out


LLAVA_VOCAB = 600


def build_tiny_llava(out: Path, norm_stats: dict | None = None, stats_file: bool = False, seed: int = 0) -> Path:
    """Tiny ``LlavaForConditionalGeneration`` (CLIP 28x28 -> 4 image tokens, Llama text) whose
    tokenizer's last 256 ids are the action bins, with OpenVLA-style ``norm_stats``."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        PreTrainedTokenizerFast,
    )

    out = Path(out)
    raw = _bpe_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "<image>"], LLAVA_VOCAB)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    from tokenizers import processors

    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.convert_tokens_to_ids("<s>"))]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tok.save_pretrained(out)
    stats = norm_stats or {
        "libero_spatial_no_noops": {
            "action": {
                "q01": [-0.5, -0.6, -0.7, -0.1, -0.2, -0.3, 0.0],
                "q99": [0.5, 0.6, 0.7, 0.1, 0.2, 0.3, 1.0],
                "mask": [True, True, True, True, True, True, False],
            }
        },
        "bridge_orig": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7, "mask": [True] * 6 + [False]}},
    }
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=28,
            patch_size=14,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
    )
    if not stats_file:
        cfg.norm_stats = stats
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg)
    model.save_pretrained(out)
    if stats_file:
        (out / "dataset_statistics.json").write_text(json.dumps(stats))
    CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(out)
    return out
