from vla_eval.provenance import checkpoint_fingerprint, package_versions


def test_checkpoint_fingerprint_tracks_config_and_weight_sizes(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"hidden": 128}')
    (ckpt / "model.safetensors").write_bytes(b"\0" * (2 << 20))
    first = checkpoint_fingerprint(str(ckpt))
    assert first == checkpoint_fingerprint(str(ckpt))
    (ckpt / "config.json").write_text('{"hidden": 256}')
    second = checkpoint_fingerprint(str(ckpt))
    assert second != first
    (ckpt / "model.safetensors").write_bytes(b"\0" * (3 << 20))
    assert checkpoint_fingerprint(str(ckpt)) != second


def test_hub_ids_and_missing_values():
    assert checkpoint_fingerprint("org/model") == checkpoint_fingerprint("org/model")
    assert checkpoint_fingerprint("org/model") != checkpoint_fingerprint("org/other")
    assert checkpoint_fingerprint(None) is None


def test_versions_name_the_simulator():
    versions = package_versions()
    assert "mujoco" in versions and "python" in versions
