"""Image preprocessing owned by each adapter (docs/architecture.md §5: every checkpoint was trained with its own).

Envs hand over images *as rendered*; the flips, crops and resizes a checkpoint expects
live here as explicit, recorded options, because getting one of them wrong (LIBERO's
180° flip, OpenVLA's 0.9-area centre crop) silently costs tens of points.

Two named chains:

* ``simple`` (default): flip -> optional JPEG round trip -> centre crop -> resize, each a
  PIL operation (one resampling for crop + resize).
* ``tf_resize_with_pad``, ``tf_lanczos3``, ``cv2_inter_area``: the one resize of SimplerEnv's RT-1, Octo and
  OpenVLA wrappers from the env's full frame (:func:`tf_resize_with_pad`, :func:`lanczos3_resize`,
  :func:`cv2_inter_area`), to ``resize``.
* ``openvla_libero``: the image path of OpenVLA's LIBERO evaluation, step by step
  (openvla ``experiments/robot/libero/libero_utils.py`` ``resize_image`` and
  ``experiments/robot/openvla_utils.py`` ``crop_and_resize`` / ``get_vla_action``):
  JPEG encode/decode as ``tf.image.encode_jpeg`` defaults (quality 95, 4:2:0 chroma),
  ``tf.image.resize(..., "lanczos3", antialias=True)`` to 224x224 then round/clip to uint8,
  and for centre-crop checkpoints a crop of 0.9 of the *area* (side ``sqrt(0.9)``) resized
  back with ``tf.image.crop_and_resize`` (bilinear, corner-aligned sampling), converted
  back with ``tf.image.convert_image_dtype`` (``x * 255.5`` truncated).  The resampling
  steps are reimplemented in numpy with TensorFlow's sampling rules, so no TensorFlow is
  needed; the JPEG step encodes with PIL (same pixel data as TF's encoder) and decodes with
  libjpeg-turbo's fast IDCT through ``simplejpeg``, which is TF's default decoder setting.

:meth:`ImagePreprocess.to_source_coords` maps normalised image coordinates predicted on
the preprocessed image back to the rendered image, so that 2D outputs (VLA-R1 waypoints)
can be lifted to 3D with the env's camera model.
"""

from __future__ import annotations

import io
import math
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

OPENVLA_SIZE = (224, 224)
"""openvla ``experiments/robot/robot_utils.py`` ``get_image_resize_size``: 224 for OpenVLA."""
OPENVLA_CROP_AREA = 0.9
"""openvla ``experiments/robot/openvla_utils.py`` ``get_vla_action``: ``crop_scale = 0.9`` (of the area)."""
TF_JPEG_QUALITY = 95
"""``tf.image.encode_jpeg`` default quality (its ``chroma_downsampling`` default is on: 4:2:0)."""

_SIMPLE_ONLY = ("resize_mode", "resample")
_OPENVLA_ONLY = ("center_crop",)


# --------------------------------------------------------------------------- steps (pure functions)
def jpeg_roundtrip(image: np.ndarray, quality: int, decoder: Literal["pil", "tf_default"] = "pil") -> np.ndarray:
    """Encode to JPEG (PIL: baseline, 4:2:0 chroma, accurate integer DCT) and decode back.

    PIL's encoder writes the same pixel data as ``tf.image.encode_jpeg`` at the same quality
    (both libjpeg-turbo with the standard tables; only the JFIF density header differs).
    ``decoder``: ``pil`` decodes with libjpeg's accurate integer IDCT (what a PIL-based
    server such as VLA-R1's does); ``tf_default`` decodes as ``tf.io.decode_image`` does by
    default, with the *fast* integer IDCT and fancy upsampling, through ``simplejpeg``
    (libjpeg-turbo ``fastdct``); PIL cannot select the fast IDCT, and the two decoders differ
    by up to ~15 levels on textured images.
    """
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
    data = buf.getvalue()
    if decoder == "tf_default":
        try:
            import simplejpeg
        except ImportError as exc:  # pragma: no cover - the models extra installs it
            raise ImportError(
                "the openvla_libero image chain decodes JPEG as TensorFlow does (fast IDCT) through simplejpeg; "
                "install it with `pip install simplejpeg` (part of the [models] extra)"
            ) from exc
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _lanczos3(x: np.ndarray) -> np.ndarray:
    """TensorFlow's ``LanczosKernelFunc(3)``: ``3 sin(pi x) sin(pi x / 3) / (pi x)^2`` on ``|x| <= 3``."""
    x = np.abs(x)
    px = np.pi * x
    with np.errstate(divide="ignore", invalid="ignore"):
        val = 3.0 * np.sin(px) * np.sin(px / 3.0) / (px * px)
    val = np.where(px < 1e-3, 1.0, val)
    return np.where(x > 3.0, 0.0, val)


def lanczos3_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` resampling matrix of ``tf.image.resize(method="lanczos3", antialias=True)``.

    Same rules as TensorFlow's ``scale_and_translate`` spans: pixel centres at ``i + 0.5``,
    the kernel widened by ``in/out`` when shrinking (antialias), taps clamped to the image
    and the weights of each output pixel normalised to sum 1.
    """
    inv_scale = in_size / out_size
    kscale = max(inv_scale, 1.0)
    radius = 3.0 * kscale
    w = np.zeros((out_size, in_size))
    for x in range(out_size):
        sample = (x + 0.5) * inv_scale
        start = min(max(math.ceil(sample - radius - 0.5), 0), in_size - 1)
        end = min(max(math.floor(sample + radius - 0.5), 0), in_size - 1) + 1
        src = np.arange(start, end)
        k = _lanczos3((src + 0.5 - sample) / kscale)
        total = k.sum()
        if abs(total) > 1e-30:
            w[x, start:end] = k / total
    return w


def lanczos3_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWxC uint8 -> ``size`` uint8, as OpenVLA's ``resize_image``: lanczos3 + antialias in float,
    then ``tf.round`` (half to even) and clip to [0, 255]."""
    h, w = image.shape[:2]
    th, tw = size
    img = image.astype(np.float64)
    out = np.einsum("oh,hwc->owc", lanczos3_weights(h, th), img)
    out = np.einsum("pw,owc->opc", lanczos3_weights(w, tw), out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _tf_bilinear_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's ``compute_interpolation_weights`` with ``HalfPixelScaler`` in float32: for each output index
    the lower and upper source index and the fraction of the upper one."""
    scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(pos)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(pos).astype(np.int64), in_size - 1)
    return lower, upper, (pos - floor).astype(np.float32)


def tf_resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``tf.image.resize(image, size)`` (bilinear, half-pixel centres, no antialias) as float32, interpolated in
    TensorFlow's order: along x on the two rows, then along y."""
    img = np.asarray(image, dtype=np.float32)
    th, tw = size
    y0, y1, yl = _tf_bilinear_axis(img.shape[0], th)
    x0, x1, xl = _tf_bilinear_axis(img.shape[1], tw)
    xl = xl[None, :, None]
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * xl
    bottom = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * xl
    return top + (bottom - top) * yl[:, None, None]


def tf_resize_with_pad(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """SimplerEnv's RT-1 wrapper (``rt1_model.py`` ``_resize_image`` L101-104): ``tf.image.resize_with_pad`` to
    ``size`` = (H, W) then ``tf.cast(..., tf.uint8)``, which truncates.

    ``resize_with_pad`` (TensorFlow ``image_ops_impl._resize_image_with_pad_common``) scales by the larger of the
    two ratios, floors the resized size, resizes bilinearly and pads with zeros, ``floor`` of half the slack above
    and to the left: 640x512 -> 320x256 exactly, 640x480 -> 320x240 with 8 black rows above and below.
    """
    h, w = image.shape[:2]
    th, tw = size
    ratio = max(w / tw, h / th)
    rh, rw = int(math.floor(h / ratio)), int(math.floor(w / ratio))
    top, left = max(0, int(math.floor((th - rh) / 2))), max(0, int(math.floor((tw - rw) / 2)))
    out = np.zeros((th, tw, image.shape[2]), dtype=np.float32)
    out[top : top + rh, left : left + rw] = tf_resize_bilinear(image, (rh, rw))
    return out.astype(np.uint8)


def cv2_inter_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """SimplerEnv's OpenVLA wrapper (``openvla_model.py`` ``_resize_image`` L147-149 @ e4545d2):
    ``cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)``, with OpenCV itself."""
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "image chain cv2_inter_area needs OpenCV: pip install opencv-python-headless "
            "(it is OpenVLA's SimplerEnv resize; no other implementation gives the same pixels)"
        ) from None
    th, tw = size
    return cv2.resize(np.ascontiguousarray(image), (tw, th), interpolation=cv2.INTER_AREA)


_RESIZE_CHAINS = {"tf_resize_with_pad": tf_resize_with_pad, "tf_lanczos3": None, "cv2_inter_area": cv2_inter_area}
"""Chains that are one upstream resize from the full frame (``tf_lanczos3``: :func:`lanczos3_resize`, Octo's
``octo_model.py`` ``_resize_image`` L88-96: lanczos3 + antialias, round, clip)."""


def center_crop_box(area: float) -> tuple[float, float, float, float]:
    """Normalised ``(y1, x1, y2, x2)`` of a centred crop covering ``area`` of the image.

    OpenVLA's ``crop_and_resize``: side ``sqrt(area)`` (0.9 of the area is 0.9487 of each
    side, *not* 0.9), offsets ``(1 - side) / 2``; computed in float32 as TensorFlow does.
    """
    side = np.float32(min(max(math.sqrt(np.float32(area)), 0.0), 1.0))
    off = (np.float32(1.0) - side) / np.float32(2.0)
    return float(off), float(off), float(off + side), float(off + side)


def crop_and_resize_bilinear(
    image01: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """``tf.image.crop_and_resize`` (bilinear) of one HxWxC float image in [0, 1].

    Output pixel ``i`` samples the input at ``y1 (H - 1) + i (y2 - y1)(H - 1)/(crop_h - 1)``
    (corner-aligned, no antialias), float32 arithmetic.
    """
    h, w = image01.shape[:2]
    ch, cw = size
    y1, x1, y2, x2 = (np.float32(v) for v in box)
    f32 = np.float32

    def coords(lo, hi, n_in, n_out):
        if n_out > 1:
            scale = (hi - lo) * f32(n_in - 1) / f32(n_out - 1)
            c = lo * f32(n_in - 1) + np.arange(n_out, dtype=np.float32) * scale
        else:
            c = np.array([f32(0.5) * (lo + hi) * f32(n_in - 1)], dtype=np.float32)
        if np.any(c < 0) or np.any(c > n_in - 1):
            raise ValueError("crop box reaches outside the image")
        c0 = np.floor(c).astype(np.int64)
        c1 = np.ceil(c).astype(np.int64)
        return c0, c1, (c - c0.astype(np.float32)).astype(np.float32)

    t, b, yl = coords(y1, y2, h, ch)
    left, r, xl = coords(x1, x2, w, cw)
    img = image01.astype(np.float32)
    xl = xl[None, :, None]
    top = img[t][:, left] + (img[t][:, r] - img[t][:, left]) * xl
    bottom = img[b][:, left] + (img[b][:, r] - img[b][:, left]) * xl
    return (top + (bottom - top) * yl[:, None, None]).astype(np.float32)


def uint8_to_unit(image: np.ndarray) -> np.ndarray:
    """``tf.image.convert_image_dtype(uint8 -> float32)``: ``x * (1 / 255)``."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def unit_to_uint8(image01: np.ndarray) -> np.ndarray:
    """``tf.image.convert_image_dtype(float32 -> uint8, saturate=True)`` after ``clip(0, 1)``:
    ``x * 255.5`` truncated (not rounded) and saturated."""
    scaled = np.clip(image01, 0.0, 1.0).astype(np.float32) * np.float32(255.5)
    return np.clip(np.trunc(scaled), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the config
class ImagePreprocess(BaseModel):
    """Preprocessing steps of one adapter; see the module docstring for the two chains.

    * ``chain``: ``simple`` (below) or ``openvla_libero`` (OpenVLA's LIBERO evaluation).
    * ``flip_180``: an *extra* 180° rotation on top of the harness's orientation conversion.
      Leave it off: the env declares its image origin, the policy declares
      ``image_orientation`` and :mod:`vla_eval.sims.orientation` converts between the two.
    * ``jpeg_quality``: JPEG encode/decode round trip (4:2:0) before any resampling; ``simple``
      decodes with PIL, ``openvla_libero`` always does one, at 95 (TensorFlow's default) unless
      set, decoded as TensorFlow does (:func:`jpeg_roundtrip`).
    * ``center_crop_area``: keep a centred crop covering this fraction of the area
      (side scale ``sqrt(area)``), then resize back. ``openvla_libero``: used when
      ``center_crop`` is on, default 0.9.
    * ``center_crop`` (``openvla_libero`` only, default on): the reference's ``--center_crop``,
      for checkpoints fine-tuned with random-crop augmentation.
    * ``resize``: ``[H, W]`` output size, or ``None`` to keep the size (``openvla_libero``: 224x224).
    * ``resize_mode`` / ``resample`` (``simple`` only): ``stretch`` or ``pad`` (openpi's
      ``resize_with_pad``); PIL filter.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: Literal["simple", "openvla_libero", "tf_resize_with_pad", "tf_lanczos3", "cv2_inter_area"] = "simple"
    flip_180: bool = False
    jpeg_quality: int | None = Field(default=None, ge=1, le=100)
    center_crop_area: float | None = Field(default=None, gt=0.0, le=1.0)
    center_crop: bool | None = None
    resize: tuple[int, int] | None = None
    resize_mode: Literal["stretch", "pad"] = "stretch"
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"

    @model_validator(mode="after")
    def _fields_of_the_chain(self) -> "ImagePreprocess":
        given = self.model_fields_set
        if self.resize is not None and (self.resize[0] < 1 or self.resize[1] < 1):
            raise ValueError(f"resize {list(self.resize)}: expected [H, W] with both >= 1")
        if self.chain in _RESIZE_CHAINS:
            bad = [f for f in (*_SIMPLE_ONLY, *_OPENVLA_ONLY, "jpeg_quality", "center_crop_area") if f in given]
            if bad:
                raise ValueError(f"{', '.join(bad)} cannot be set with chain {self.chain!r} (one resize, nothing else)")
            if self.resize is None:
                raise ValueError(f"chain {self.chain!r} needs resize: [H, W]")
        elif self.chain == "simple":
            bad = [f for f in _OPENVLA_ONLY if f in given and getattr(self, f) is not None]
            if bad:
                raise ValueError(
                    f"{', '.join(bad)} belongs to chain 'openvla_libero'; the simple chain crops with center_crop_area"
                )
        else:
            bad = [f for f in _SIMPLE_ONLY if f in given]
            if bad:
                raise ValueError(
                    f"{', '.join(bad)} cannot be set with chain 'openvla_libero' (its resampling is fixed: "
                    "lanczos3 + antialias resize, bilinear crop_and_resize)"
                )
        return self

    # -- resolved parameters
    @property
    def crop_area(self) -> float | None:
        """The centre-crop area fraction in force (None: no crop)."""
        if self.chain == "openvla_libero":
            if self.center_crop is False:
                return None
            return self.center_crop_area if self.center_crop_area is not None else OPENVLA_CROP_AREA
        return self.center_crop_area if self.center_crop_area is not None and self.center_crop_area < 1.0 else None

    @property
    def jpeg(self) -> int | None:
        if self.chain == "openvla_libero":
            return self.jpeg_quality if self.jpeg_quality is not None else TF_JPEG_QUALITY
        return self.jpeg_quality

    @property
    def out_size(self) -> tuple[int, int] | None:
        if self.chain == "openvla_libero":
            return tuple(self.resize) if self.resize is not None else OPENVLA_SIZE  # type: ignore[return-value]
        return self.resize

    def describe(self) -> dict[str, Any]:
        """The chain in force, step by step (recorded with the episode / policy description)."""
        steps: list[str] = []
        if self.flip_180:
            steps.append("flip_180")
        if self.jpeg is not None:
            dec = "fast IDCT as tf.io.decode_image" if self.chain == "openvla_libero" else "PIL decode"
            steps.append(f"jpeg q{self.jpeg} 4:2:0, {dec}")
        area = self.crop_area
        if self.chain in _RESIZE_CHAINS:
            steps.append(f"{self.chain} to {self.resize[0]}x{self.resize[1]}")  # type: ignore[index]
        elif self.chain == "openvla_libero":
            h, w = self.out_size  # type: ignore[misc]
            steps.append(f"resize {h}x{w} lanczos3 antialias, round")
            if area is not None:
                y1, x1, y2, x2 = center_crop_box(area)
                steps.append(
                    f"center crop area {area:g} (side {y2 - y1:.6f}) box [{y1:.6f}, {x1:.6f}, {y2:.6f}, {x2:.6f}], "
                    f"bilinear crop_and_resize to {h}x{w}"
                )
        else:
            if area is not None:
                steps.append(f"center crop area {area:g} (side {math.sqrt(area):.6f})")
            if self.resize is not None:
                steps.append(f"resize {self.resize[0]}x{self.resize[1]} {self.resample} {self.resize_mode}")
        return {"chain": self.chain, "steps": steps}

    # -- pixels
    def apply(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 in, preprocessed HxWx3 uint8 out (never modifies the input)."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {img.dtype}")
        if self.flip_180:
            img = img[::-1, ::-1]
        if self.jpeg is not None:
            img = jpeg_roundtrip(img, self.jpeg, "tf_default" if self.chain == "openvla_libero" else "pil")
        if self.chain == "openvla_libero":
            return self._apply_openvla(img)
        if self.chain in _RESIZE_CHAINS:
            resize = _RESIZE_CHAINS[self.chain] or lanczos3_resize
            return np.ascontiguousarray(resize(img, tuple(self.resize)))  # type: ignore[arg-type]
        return self._apply_simple(img)

    def _apply_openvla(self, img: np.ndarray) -> np.ndarray:
        size = self.out_size
        img = lanczos3_resize(img, size)  # type: ignore[arg-type]
        area = self.crop_area
        if area is not None:
            img = unit_to_uint8(crop_and_resize_bilinear(uint8_to_unit(img), center_crop_box(area), size))  # type: ignore[arg-type]
        return np.ascontiguousarray(img)

    def _apply_simple(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        pil = Image.fromarray(np.ascontiguousarray(img))
        box = None
        area = self.crop_area
        if area is not None:
            s = math.sqrt(area)
            ch, cw = h * s, w * s
            top, left = (h - ch) / 2.0, (w - cw) / 2.0
            box = (left, top, left + cw, top + ch)
            if self.resize is None or self.resize_mode == "pad":
                # resize the crop back to the original size, as OpenVLA's TF crop_and_resize does
                pil = pil.resize((w, h), _RESAMPLE[self.resample], box=box)
                box = None
        if self.resize is not None:
            th, tw = self.resize
            if self.resize_mode == "stretch":
                pil = pil.resize((tw, th), _RESAMPLE[self.resample], box=box)  # crop + resize in one resampling
            else:
                scale = min(th / h, tw / w)
                nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
                inner = pil.resize((nw, nh), _RESAMPLE[self.resample])
                canvas = Image.new("RGB", (tw, th))
                canvas.paste(inner, ((tw - nw) // 2, (th - nh) // 2))
                pil = canvas
        return np.asarray(pil.convert("RGB"))

    # -- coordinates
    def _crop_maps(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(offset, scale) per axis (x, y) with ``p_src = offset + scale * p_model`` for the crop step."""
        area = self.crop_area
        if area is None:
            return None
        if self.chain == "openvla_libero":
            # corner-aligned sampling on the resized image of size n (crop output also n):
            # in = y1 (n-1) + i side (n-1)/(n-1), i = p n - 0.5, p_src = (in + 0.5) / n
            n = np.array(self.out_size[::-1], dtype=np.float64)  # (W, H)  # type: ignore[index]
            y1, x1, y2, x2 = center_crop_box(area)
            lo = np.array([x1, y1])
            side = np.array([x2 - x1, y2 - y1])
            offset = (lo * (n - 1) - 0.5 * side + 0.5) / n
            return offset, side
        s = math.sqrt(area)
        return np.full(2, (1.0 - s) / 2.0), np.full(2, s)

    def to_source_coords(self, xy: np.ndarray, src_hw: tuple[int, int]) -> np.ndarray:
        """Map normalised ``(x, y)`` in [0, 1] on the preprocessed image back to the rendered image.

        ``x`` runs left -> right, ``y`` top -> bottom, both relative to the full image width
        and height.  Inverse of the geometric steps of :meth:`apply` (stretch resizes and the
        JPEG step leave normalised coordinates unchanged).
        """
        p = np.array(xy, dtype=np.float64, copy=True).reshape(-1, 2)
        h, w = src_hw
        if self.chain == "simple" and self.resize is not None and self.resize_mode == "pad":
            th, tw = self.resize
            scale = min(th / h, tw / w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            ox, oy = (tw - nw) // 2, (th - nh) // 2
            p[:, 0] = (p[:, 0] * tw - ox) / nw
            p[:, 1] = (p[:, 1] * th - oy) / nh
        crop = self._crop_maps()
        if crop is not None:
            p = crop[0] + p * crop[1]
        if self.flip_180:
            p = 1.0 - p
        return p

    def from_source_coords(self, xy: np.ndarray, src_hw: tuple[int, int]) -> np.ndarray:
        """Inverse of :meth:`to_source_coords` (used by tests and by the bridge proof)."""
        p = np.array(xy, dtype=np.float64, copy=True).reshape(-1, 2)
        h, w = src_hw
        if self.flip_180:
            p = 1.0 - p
        crop = self._crop_maps()
        if crop is not None:
            p = (p - crop[0]) / crop[1]
        if self.chain == "simple" and self.resize is not None and self.resize_mode == "pad":
            th, tw = self.resize
            scale = min(th / h, tw / w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            ox, oy = (tw - nw) // 2, (th - nh) // 2
            p[:, 0] = (p[:, 0] * nw + ox) / tw
            p[:, 1] = (p[:, 1] * nh + oy) / th
        return p
