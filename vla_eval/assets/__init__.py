"""Third-party asset packs that some suites need, installed into a user assets folder.

The SimplerEnv visual-matching suites need SimplerEnv's own robots, objects and real
background photos (simpler-env/ManiSkill2_real2sim, Apache-2.0). They are not shipped in
this package; ``vla-eval assets fetch simpler`` installs exactly the files named in the
pack's manifest (``manifests/<pack>.sha256``, sha256 + upstream path per line) from the
upstream repository at a pinned commit, or from a local copy (``--from DIR``), and checks
every file's sha256 before it is moved into place. A partly written or corrupted file is
never left under its final name.

Where packs live: ``$VLA_EVAL_ASSETS/<pack>/`` when that variable is set, else
``$XDG_DATA_HOME/vla-eval/assets/<pack>/`` (``~/.local/share/vla-eval/assets``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vla_eval.errors import VlaEvalError

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"


class AssetError(VlaEvalError):
    """An asset pack is missing, incomplete, or a file failed its checksum."""


@dataclass(frozen=True)
class AssetPack:
    """One installable pack: where its files come from and which files it is."""

    name: str  # folder name under the assets root
    alias: str  # the word users type: ``vla-eval assets fetch <alias>``
    upstream_repo: str
    commit: str
    url_base: str  # ``{url_base}/{path}`` is one file's download address
    description: str

    @property
    def manifest_path(self) -> Path:
        return MANIFEST_DIR / f"{self.name}.sha256"

    def manifest(self) -> dict[str, str]:
        """``{relative path: sha256}`` of every file of the pack."""
        return read_manifest(self.manifest_path)

    @property
    def fetch_command(self) -> str:
        return f"vla-eval assets fetch {self.alias}"


_SIMPLER_COMMIT = "ef7a4d4fdf4b69f2c2154db5b15b9ac8dfe10682"
SIMPLER = AssetPack(
    name="simpler-real2sim",
    alias="simpler",
    upstream_repo="simpler-env/ManiSkill2_real2sim",
    commit=_SIMPLER_COMMIT,
    url_base=f"https://raw.githubusercontent.com/simpler-env/ManiSkill2_real2sim/{_SIMPLER_COMMIT}",
    description="SimplerEnv's robots (Google robot, WidowX 250 S), evaluation objects and real background photos",
)
PACKS = {SIMPLER.alias: SIMPLER}


def read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-style file; every line must be ``<64 hex>  <relative path>``."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        rel = rel.strip()
        if rel.startswith("./"):
            rel = rel[2:]
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not rel:
            raise AssetError(f"{path}:{lineno}: expected '<sha256>  <relative path>', got {line!r}")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise AssetError(f"{path}:{lineno}: path {rel!r} must stay inside the pack folder")
        out[rel] = digest
    return out


def assets_root() -> Path:
    """The folder holding installed packs (see the module docstring for the order)."""
    env = os.environ.get("VLA_EVAL_ASSETS")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "vla-eval" / "assets"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack_dir(pack: AssetPack, root: Path | None = None) -> Path:
    return (root or assets_root()) / pack.name


def require_pack(pack: AssetPack, needed: list[str] | None = None, root: Path | None = None) -> Path:
    """The pack's folder; an error naming the one command to run if it (or a needed file) is absent.

    Only presence is checked here (hashing 75 MB per episode would be waste); the checksums
    are checked when the pack is installed.
    """
    folder = pack_dir(pack, root)
    manifest = pack.manifest()
    wanted = needed if needed is not None else list(manifest)
    missing = [rel for rel in wanted if not (folder / rel).is_file()]
    if missing:
        raise AssetError(
            f"{pack.description} are not installed: {folder / missing[0]} is missing"
            f" ({len(missing)} of {len(wanted)} files). Run: {pack.fetch_command}"
        )
    return folder


@dataclass
class FetchReport:
    dest: Path
    installed: int  # files written now
    kept: int  # files already present with the right sha256


def _copy_from(src_root: Path, rel: str, tmp: Path) -> None:
    src = src_root / rel
    if not src.is_file():
        raise AssetError(f"{src} is missing from the local copy (the manifest {rel!r} needs it)")
    shutil.copyfile(src, tmp)


def _download(url: str, tmp: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as exc:
        raise AssetError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise AssetError(f"download of {url} failed: {exc}") from exc


def _file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the process umask (read without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def fetch(
    pack: AssetPack,
    dest: Path | None = None,
    source_dir: Path | None = None,
    url_base: str | None = None,
    timeout: float = 60.0,
    progress=None,
) -> FetchReport:
    """Install every file of ``pack`` into ``dest`` (default: the user assets folder).

    Each file is written to a temporary name, its sha256 compared with the manifest, and
    only then renamed into place; a mismatch is an error naming the file and both digests.
    Files already present with the right digest are kept (a rerun resumes).
    """
    folder = Path(dest) if dest is not None else pack_dir(pack)
    base = (url_base or pack.url_base).rstrip("/")
    manifest = pack.manifest()
    installed = kept = 0
    for i, (rel, digest) in enumerate(sorted(manifest.items()), 1):
        final = folder / rel
        if final.is_file() and sha256_file(final) == digest:
            kept += 1
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if source_dir is not None:
                _copy_from(Path(source_dir), rel, tmp)
                origin = str(Path(source_dir) / rel)
            else:
                origin = f"{base}/{rel}"
                _download(origin, tmp, timeout)
            got = sha256_file(tmp)
            if got != digest:
                raise AssetError(
                    f"{origin}: sha256 {got} does not match the manifest's {digest} for {rel}; file rejected"
                )
            os.chmod(tmp, _file_mode())  # mkstemp made it 0600; a shared asset folder must be readable
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        installed += 1
        if progress is not None:
            progress(i, len(manifest), rel)
    return FetchReport(dest=folder, installed=installed, kept=kept)
