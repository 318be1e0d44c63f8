"""One-off check: the ``openvla_libero`` image chain against TensorFlow's own ops.

Not a dependency and not a test: TensorFlow is large and the harness never imports it.
Run it in a separate environment that has ``tensorflow-cpu`` and this project's numpy/PIL::

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu pillow pydantic simplejpeg
    PYTHONPATH=. /tmp/tfenv/bin/python benchmarks/openvla_image_chain_vs_tf.py [--images N] [--size 256]

It runs OpenVLA's reference steps (openvla ``experiments/robot/libero/libero_utils.py``
``resize_image`` and ``experiments/robot/openvla_utils.py`` ``crop_and_resize`` /
``get_vla_action``, written out below with the same TF calls) and ours on the same images,
step by step, and prints the maximum and mean absolute pixel difference and the share of
differing pixels for: the JPEG round trip alone, JPEG + resize, and the whole chain with the
0.9-area centre crop.  Images: smooth random fields plus sharp edges (a LIBERO-like mix); with
``--npz FILE`` (key ``images``, NxHxWx3 uint8) real renders are used instead.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _tf_reference(img: np.ndarray, center_crop: bool):
    import tensorflow as tf

    jpeg = tf.io.decode_image(tf.image.encode_jpeg(img), expand_animations=False, dtype=tf.uint8)
    resized = tf.image.resize(jpeg, (224, 224), method="lanczos3", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    out = resized
    if center_crop:
        image = tf.image.convert_image_dtype(resized, tf.float32)[None]
        s = tf.reshape(tf.clip_by_value(tf.sqrt(0.9), 0, 1), shape=(1,))
        off = (1 - s) / 2
        boxes = tf.stack([off, off, off + s, off + s], axis=1)
        image = tf.image.crop_and_resize(image, boxes, tf.range(1), (224, 224))[0]
        out = tf.image.convert_image_dtype(tf.clip_by_value(image, 0, 1), tf.uint8, saturate=True)
    return jpeg.numpy(), resized.numpy(), out.numpy()


def _ours(img: np.ndarray, center_crop: bool):
    from vla_eval.policies.image_preprocess import ImagePreprocess, jpeg_roundtrip, lanczos3_resize

    jpeg = jpeg_roundtrip(img, 95, "tf_default")
    resized = lanczos3_resize(jpeg, (224, 224))
    out = ImagePreprocess(chain="openvla_libero", center_crop=center_crop).apply(img)
    return jpeg, resized, out


def _images(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        low = rng.uniform(0, 255, (size // 16, size // 16, 3))
        img = np.kron(low, np.ones((16, 16, 1)))[:size, :size]
        y, x = np.mgrid[:size, :size]
        for _ in range(6):  # sharp-edged boxes (objects) over the smooth background
            cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(8, size // 4))]
            img[(abs(y - cy) < r) & (abs(x - cx) < r)] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 4, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _diff(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(int) - b.astype(int))
    return {"max": int(d.max()), "mean": round(float(d.mean()), 4), "frac_differ": round(float((d > 0).mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--npz", default=None)
    args = ap.parse_args()
    images = list(np.load(args.npz)["images"]) if args.npz else _images(args.images, args.size)
    report: dict[str, list] = {"jpeg": [], "jpeg+resize": [], "chain_no_crop": [], "chain_center_crop": []}
    for img in images:
        for crop in (False, True):
            tj, tr, to = _tf_reference(img, crop)
            oj, orr, oo = _ours(img, crop)
            if not crop:
                report["jpeg"].append(_diff(tj, oj))
                report["jpeg+resize"].append(_diff(tr, orr))
                report["chain_no_crop"].append(_diff(to, oo))
            else:
                report["chain_center_crop"].append(_diff(to, oo))
    summary = {
        k: {
            "max": max(r["max"] for r in v),
            "mean": round(float(np.mean([r["mean"] for r in v])), 4),
            "frac_differ": round(float(np.mean([r["frac_differ"] for r in v])), 4),
        }
        for k, v in report.items()
    }
    print(json.dumps({"images": len(images), "size": list(images[0].shape), "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
