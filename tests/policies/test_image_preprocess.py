from __future__ import annotations

import numpy as np
import pytest

from vla_eval.policies.image_preprocess import ImagePreprocess


def _img(h=40, w=60):
    img = np.zeros((h, w, 3), np.uint8)
    img[:5, :5] = 255  # a bright top-left corner
    return img


def test_flip_180_moves_corner():
    out = ImagePreprocess(flip_180=True).apply(_img())
    assert out[-1, -1].sum() == 765 and out[0, 0].sum() == 0


def test_resize_and_pad_shapes():
    assert ImagePreprocess(resize=(224, 224)).apply(_img()).shape == (224, 224, 3)
    padded = ImagePreprocess(resize=(64, 64), resize_mode="pad").apply(np.full((40, 60, 3), 200, np.uint8))
    assert padded.shape == (64, 64, 3)
    assert padded[0, 32].sum() == 0 and padded[32, 32].sum() > 0  # black bars top/bottom


def test_center_crop_area():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:4, :] = 255  # a band at the top that a 0.81-area crop (5% margin per side) removes
    out = ImagePreprocess(center_crop_area=0.81).apply(img)
    assert out.shape == (100, 100, 3) and out[:, :].max() < 40


@pytest.mark.parametrize(
    "pre",
    [
        ImagePreprocess(),
        ImagePreprocess(flip_180=True),
        ImagePreprocess(center_crop_area=0.9, resize=(224, 224)),
        ImagePreprocess(flip_180=True, center_crop_area=0.5, resize=(50, 80), resize_mode="pad"),
    ],
)
def test_coordinate_maps_invert(pre):
    xy = np.random.default_rng(0).uniform(0.2, 0.8, size=(20, 2))
    back = pre.to_source_coords(pre.from_source_coords(xy, (40, 60)), (40, 60))
    np.testing.assert_allclose(back, xy, atol=1e-12)


def test_flip_coordinate_map_matches_pixels():
    pre = ImagePreprocess(flip_180=True)
    out = pre.apply(_img())
    ys, xs = np.nonzero(out[..., 0])
    centre_model = np.array([[(xs.mean() + 0.5) / 60, (ys.mean() + 0.5) / 40]])
    np.testing.assert_allclose(pre.to_source_coords(centre_model, (40, 60)), [[2.5 / 60, 2.5 / 40]], atol=1e-9)


def test_rejects_bad_images():
    with pytest.raises(ValueError):
        ImagePreprocess().apply(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        ImagePreprocess().apply(np.zeros((4, 4, 3), np.float32))


# --------------------------------------------------------------------------- openvla_libero chain
# Reference: openvla experiments/robot/libero/libero_utils.py resize_image (JPEG round trip,
# tf.image.resize lanczos3 antialias, round) and experiments/robot/openvla_utils.py
# crop_and_resize / get_vla_action (crop_scale 0.9 of the AREA, tf.image.crop_and_resize).
from vla_eval.policies.image_preprocess import (  # noqa: E402
    center_crop_box,
    jpeg_roundtrip,
    lanczos3_resize,
    unit_to_uint8,
)


def _textured(h=256, w=256, seed=0):
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (h // 8, w // 8, 3))
    img = np.kron(low, np.ones((8, 8, 1))) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_openvla_crop_box_side_is_sqrt_of_the_area():
    y1, x1, y2, x2 = center_crop_box(0.9)
    assert y2 - y1 == pytest.approx(np.sqrt(0.9), abs=1e-6) and x2 - x1 == pytest.approx(0.9486833, abs=1e-6)
    assert y1 == pytest.approx((1 - np.sqrt(0.9)) / 2, abs=1e-6) and x1 == y1
    # behaviour: a grey ramp (value = column) through the chain; the crop samples column
    # x1 * 223 + i * side (corner-aligned), so the output ramp has slope sqrt(0.9), not 0.9
    ramp = np.broadcast_to(np.arange(224, dtype=np.uint8)[None, :, None], (224, 224, 3)).copy()
    out = ImagePreprocess(chain="openvla_libero", center_crop=True).apply(ramp).astype(float)
    cols = np.arange(224)
    row = out[100:124, 20:200, 1].mean(axis=0)
    slope, _ = np.polyfit(cols[20:200], row, 1)
    assert slope == pytest.approx(np.sqrt(0.9), abs=5e-3)
    # exact sampling positions, converted back as convert_image_dtype does (x / 255 * 255.5, truncated)
    expected = np.trunc((x1 * 223 + cols * (x2 - x1)) * 255.5 / 255)
    assert np.abs(row - expected[20:200]).mean() < 0.5  # the JPEG step leaves a smooth ramp almost untouched
    uncropped = ImagePreprocess(chain="openvla_libero", center_crop=False).apply(ramp).astype(float)
    assert np.polyfit(cols[20:200], uncropped[100:124, 20:200, 1].mean(axis=0), 1)[0] == pytest.approx(1.0, abs=5e-3)


def test_openvla_chain_equals_its_steps_and_includes_the_jpeg_round_trip():
    img = _textured()
    chain = ImagePreprocess(chain="openvla_libero", center_crop=False).apply(img)
    assert chain.shape == (224, 224, 3) and chain.dtype == np.uint8
    # step by step, independently of the chain object
    np.testing.assert_array_equal(chain, lanczos3_resize(jpeg_roundtrip(img, 95, "tf_default"), (224, 224)))
    no_jpeg = lanczos3_resize(img, (224, 224))
    diff = np.abs(chain.astype(int) - no_jpeg.astype(int))
    assert diff.mean() > 0.5 and np.mean(diff > 0) > 0.3  # the JPEG step is there and changes most pixels


def test_jpeg_step_subsamples_chroma_like_tf_encode_jpeg():
    # 1-pixel red/blue columns: 4:2:0 keeps one chroma sample per 2x2 block, so neighbouring
    # columns come back with nearly the same colour; luma detail (grey stripes) survives
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 0::2] = (255, 0, 0)
    img[:, 1::2] = (0, 0, 255)
    out = jpeg_roundtrip(img, 95, "tf_default").astype(int)
    assert np.abs(out[8:56, 8:56:2, 0] - out[8:56, 9:57:2, 0]).mean() < 80  # was 255 apart
    grey = np.zeros((64, 64, 3), np.uint8)
    grey[:, 0::2] = 255
    back = jpeg_roundtrip(grey, 95, "tf_default").astype(int)
    assert np.abs(back[8:56, 8:56:2] - back[8:56, 9:57:2]).mean() > 200


def test_lanczos3_resize_agrees_with_pil_lanczos_and_keeps_ramps():
    from PIL import Image

    img = _textured(seed=3)
    ours = lanczos3_resize(img, (224, 224)).astype(int)
    pil = np.asarray(Image.fromarray(img).resize((224, 224), Image.Resampling.LANCZOS)).astype(int)
    d = np.abs(ours - pil)  # PIL rounds to 8 bits between its two passes; TF (and ours) does not
    assert d.max() <= 3 and d.mean() < 0.3
    ramp = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (8, 256, 3)).copy()
    out = lanczos3_resize(ramp, (8, 224))[0, :, 0].astype(float)
    j = np.arange(224)
    np.testing.assert_allclose(out[10:-10], ((j + 0.5) * 256 / 224 - 0.5)[10:-10], atol=0.51)


def test_float_to_uint8_truncates_like_convert_image_dtype():
    k = np.arange(256)
    np.testing.assert_array_equal(unit_to_uint8((k / 255.0).astype(np.float32)), k)
    assert unit_to_uint8(np.array([0.5, 1.2, -0.1], np.float32)).tolist() == [127, 255, 0]  # 0.5 * 255.5 = 127.75


def test_chain_fields_are_checked():
    with pytest.raises(ValueError, match="resample"):
        ImagePreprocess(chain="openvla_libero", resample="bilinear")
    with pytest.raises(ValueError, match="center_crop"):
        ImagePreprocess(center_crop=True)
    with pytest.raises(ValueError):
        ImagePreprocess(chain="tf")
    assert ImagePreprocess(chain="openvla_libero", center_crop=False).crop_area is None
    assert ImagePreprocess(chain="openvla_libero").describe()["steps"][0].startswith("jpeg q95")
    assert ImagePreprocess().describe() == {"chain": "simple", "steps": []}


def test_openvla_chain_coordinates_follow_the_pixels():
    pre = ImagePreprocess(chain="openvla_libero", center_crop=True)
    xy = np.random.default_rng(0).uniform(0.1, 0.9, size=(20, 2))
    np.testing.assert_allclose(pre.to_source_coords(pre.from_source_coords(xy, (256, 256)), (256, 256)), xy, atol=1e-12)
    img = np.zeros((256, 256, 3), np.uint8)
    img[40:48, 180:188] = 255  # a bright square centred at pixel (184, 44) of the render
    out = pre.apply(img)[..., 1].astype(float)
    ys, xs = np.nonzero(out > 128)
    model_xy = np.array([[(xs.mean() + 0.5) / 224, (ys.mean() + 0.5) / 224]])
    np.testing.assert_allclose(pre.to_source_coords(model_xy, (256, 256)) * 256, [[184.0, 44.0]], atol=0.6)


def test_simple_chain_jpeg_option_is_a_pil_round_trip():
    from io import BytesIO

    from PIL import Image

    img = _textured(64, 64, seed=5)
    buf = BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)  # VLA-R1 scripts/inference.py encode_image_to_jpeg_bytes
    expected = np.asarray(Image.open(BytesIO(buf.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(ImagePreprocess(jpeg_quality=90).apply(img), expected)
