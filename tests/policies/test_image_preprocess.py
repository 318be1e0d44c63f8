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
