"""``vla-eval assets fetch simpler``: installs exactly the manifest's files, checks every sha256.

The download path is tested against a loopback HTTP server serving the shared copy of the
pack (no network); a corrupted file served by it must be rejected and not kept.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from vla_eval.assets import SIMPLER, AssetError, fetch, read_manifest, require_pack
from vla_eval.cli.main import main


def test_manifest_is_the_shared_sha256sums_minus_local_notes(simpler_assets):
    shared = read_manifest(simpler_assets / "SHA256SUMS")
    ours = SIMPLER.manifest()
    assert "MISSING.txt" not in ours  # a note of the shared copy, not an upstream file
    assert {k: v for k, v in shared.items() if k != "MISSING.txt"} == ours
    assert len(ours) == 539
    assert "mani_skill2_real2sim/assets/descriptions/widowx_description/wx250s.urdf" in ours


def test_manifest_rejects_paths_leaving_the_folder(tmp_path):
    bad = tmp_path / "m.sha256"
    bad.write_text("0" * 64 + "  ../etc/passwd\n")
    with pytest.raises(AssetError, match="inside the pack"):
        read_manifest(bad)


def _small_pack(tmp_path: Path, simpler_assets: Path, n: int = 6):
    """A pack of the first ``n`` manifest entries (the mechanics are the same for 539)."""
    rels = sorted(SIMPLER.manifest().items())[:n]
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    (mdir / f"{SIMPLER.name}.sha256").write_text("".join(f"{d}  {r}\n" for r, d in rels))
    return SIMPLER, mdir, [r for r, _ in rels]


@pytest.fixture
def small_pack(tmp_path, simpler_assets, monkeypatch):
    pack, mdir, rels = _small_pack(tmp_path, simpler_assets)
    monkeypatch.setattr("vla_eval.assets.MANIFEST_DIR", mdir)
    return pack, rels


class _Server:
    def __init__(self, root: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_from_loopback_server_installs_and_checks(tmp_path, simpler_assets, small_pack):
    pack, rels = small_pack
    dest = tmp_path / "dest"
    with _Server(simpler_assets) as base:
        report = fetch(pack, dest=dest, url_base=base)
        assert report.installed == len(rels) and report.kept == 0
        for rel in rels:
            assert (dest / rel).read_bytes() == (simpler_assets / rel).read_bytes()
        assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == sorted(rels)
        again = fetch(pack, dest=dest, url_base=base)  # a rerun keeps good files
        assert again.installed == 0 and again.kept == len(rels)


def test_corrupted_download_is_rejected_and_not_kept(tmp_path, simpler_assets, small_pack):
    pack, rels = small_pack
    served = tmp_path / "served"
    shutil.copytree(simpler_assets, served, ignore=shutil.ignore_patterns("models", "real_inpainting", "descriptions"))
    for rel in rels:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(simpler_assets / rel, served / rel)
    victim = rels[-1]
    (served / victim).chmod(0o644)
    data = bytearray((served / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (served / victim).write_bytes(bytes(data))
    dest = tmp_path / "dest"
    with _Server(served) as base:
        with pytest.raises(AssetError, match=f"sha256 {hashlib.sha256(data).hexdigest()}.*{victim}; file rejected"):
            fetch(pack, dest=dest, url_base=base)
    assert not (dest / victim).exists()
    assert not [p for p in dest.rglob(".part-*")]  # no half-written leftovers


def test_missing_upstream_file_names_the_url(tmp_path, simpler_assets, small_pack):
    pack, rels = small_pack
    empty = tmp_path / "empty"
    empty.mkdir()
    with _Server(empty) as base:
        with pytest.raises(AssetError, match=f"{base}/{rels[0]} failed: HTTP 404"):
            fetch(pack, dest=tmp_path / "d", url_base=base)


def test_cli_fetch_from_local_copy_and_require(tmp_path, simpler_assets, monkeypatch, capsys):
    monkeypatch.setenv("VLA_EVAL_ASSETS", str(tmp_path / "root"))
    with pytest.raises(AssetError, match="Run: vla-eval assets fetch simpler$"):
        require_pack(SIMPLER)
    rc = main(["assets", "fetch", "simpler", "--from", str(simpler_assets), "-q"])
    assert rc == 0
    assert "539 files installed" in capsys.readouterr().out
    folder = require_pack(SIMPLER)
    assert folder == tmp_path / "root" / "simpler-real2sim"
    assert not (folder / "MISSING.txt").exists()


def test_cli_unknown_pack_is_an_error(capsys):
    assert main(["assets", "fetch", "libero"]) == 2
    assert "unknown asset pack 'libero'" in capsys.readouterr().err
