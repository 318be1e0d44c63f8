"""The render-drift canary: quiet on the machine the values were recorded on, loud when the lighting changes."""

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vla_eval import canary  # noqa: E402
from vla_eval.cli.main import main  # noqa: E402
from vla_eval.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def frames_here():
    return canary.measure(episodes=1, rollouts=False)


def _reference(ep_per_task=1):
    ref, thumbs = canary.load_reference()
    keep = [i for i, e in enumerate(ref["episodes"]) if e["episode_index"] < ep_per_task]
    cams = len(thumbs) // len(ref["episodes"])
    idx = [i * cams + c for i in keep for c in range(cams)]
    return {**ref, "episodes": [ref["episodes"][i] for i in keep]}, thumbs[idx]


def test_unchanged_scene_does_not_warn(frames_here):
    ref, thumbs = _reference()
    report = canary.compare(frames_here, ref, thumbs)
    assert report.level in ("ok", "notice"), report.text()
    assert report.max_mad < canary.WARN_MAD


@pytest.mark.slow
def test_dimmed_lighting_fires_the_canary():
    ref, thumbs = _reference()
    dim = canary.measure(episodes=1, rollouts=False, extra_perturbations=[{"type": "lighting", "scale": 0.7}])
    report = canary.compare(dim, ref, thumbs)
    assert report.level == "warn" and report.exit_code == 1
    assert not report.frames_identical and report.max_mad > canary.WARN_MAD
    assert "draw differently" in report.text()


def test_changed_outcome_fires_even_with_identical_frames(frames_here):
    ref, thumbs = _reference()
    fake = canary.CanaryMeasurement(**{**frames_here.__dict__, "episodes": [dict(e) for e in ref["episodes"]]})
    fake.episodes[0]["success"] = not fake.episodes[0]["success"]
    fake.frames_sha256 = ref["frames_sha256"]
    fake.thumbnails = thumbs
    report = canary.compare(fake, ref, thumbs)
    assert report.level == "warn" and report.outcome_changes == 1


def test_missing_or_foreign_reference_is_a_clear_error(tmp_path, frames_here):
    with pytest.raises(ConfigError, match="does not exist"):
        canary.load_reference(tmp_path)
    ref, thumbs = _reference()
    with pytest.raises(ConfigError, match="recorded for weights"):
        canary.compare(frames_here, {**ref, "weights_sha256_16": "0" * 16}, thumbs)


def test_cli_frames_only_writes_a_verdict(tmp_path):
    out = tmp_path / "canary.json"
    code = main(["canary", "--frames-only", "--json", str(out)])
    verdict = json.loads(out.read_text())
    assert code == (1 if verdict["level"] == "warn" else 0)
    assert verdict["level"] in ("ok", "notice")
