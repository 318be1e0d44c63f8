"""Build tiny random-init LeRobot policy folders with LeRobot's own classes (run inside the lerobot env).

``python tests/policies/lerobot_tiny.py OUT_DIR KIND...`` writes ``OUT_DIR/KIND`` (act, diffusion), each what
``lerobot-train`` writes for a checkpoint: ``config.json`` + ``model.safetensors``
(``PreTrainedPolicy.save_pretrained``) and the pre/post-processor pipelines with their normalisation
statistics (``PolicyProcessorPipeline.save_pretrained``), with the input/output features LeRobot's LIBERO
env gives a policy: two cameras (``observation.images.image`` agentview, ``observation.images.image2``
wrist), an 8-D ``observation.state`` and a 7-D ``action``.  Nothing is downloaded: the vision backbones
start from random weights (``pretrained_backbone_weights=None``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def build(kind: str, out: Path, image_size: int = 64) -> Path:
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors

    torch.manual_seed(0)
    shape = (3, image_size, image_size)
    inputs = {
        "observation.images.image": PolicyFeature(type=FeatureType.VISUAL, shape=shape),
        "observation.images.image2": PolicyFeature(type=FeatureType.VISUAL, shape=shape),
        "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(8,)),
    }
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(7,))}
    common = dict(input_features=inputs, output_features=outputs, device="cpu", push_to_hub=False)
    if kind == "act":
        cfg = make_policy_config(
            "act",
            chunk_size=8,
            n_action_steps=4,
            dim_model=32,
            n_heads=2,
            dim_feedforward=64,
            n_encoder_layers=1,
            n_decoder_layers=1,
            use_vae=False,
            pretrained_backbone_weights=None,
            **common,
        )
    elif kind == "diffusion":
        cfg = make_policy_config(
            "diffusion",
            n_obs_steps=2,
            horizon=8,
            n_action_steps=4,
            drop_n_last_frames=3,
            down_dims=(16, 32),
            kernel_size=3,
            n_groups=4,
            diffusion_step_embed_dim=16,
            spatial_softmax_num_keypoints=4,
            num_inference_steps=2,
            crop_shape=None,
            pretrained_backbone_weights=None,
            **common,
        )
    else:
        raise SystemExit(f"unknown kind {kind!r} (act | diffusion)")
    policy = get_policy_class(cfg.type)(cfg)
    stats = {
        "observation.images.image": _image_stats(),
        "observation.images.image2": _image_stats(),
        "observation.state": _vector_stats(8, scale=1.0),
        "action": _vector_stats(7, scale=0.5),
    }
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    return out


def _image_stats() -> dict:
    import torch

    return {
        "mean": torch.full((3, 1, 1), 0.5),
        "std": torch.full((3, 1, 1), 0.25),
        "min": torch.zeros(3, 1, 1),
        "max": torch.ones(3, 1, 1),
    }


def _vector_stats(dim: int, scale: float) -> dict:
    import torch

    return {
        "mean": torch.zeros(dim),
        "std": torch.full((dim,), scale),
        "min": torch.full((dim,), -scale),
        "max": torch.full((dim,), scale),
    }


if __name__ == "__main__":
    for kind in sys.argv[2:]:
        print(build(kind, Path(sys.argv[1]) / kind))
