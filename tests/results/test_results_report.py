"""vla-eval report: leaderboard grouping, escaping, and a headless-Chromium screenshot."""

import html
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runfixtures import make_run, suite_dict
from vla_eval.cli.main import main
from vla_eval.results.report import TH_COLOR

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert('x')</script>"
LIBERO = ("libero_spatial", "libero_object", "libero_goal", "libero_10")


def _fixture_root(root: Path) -> Path:
    for i, (policy, ckpt) in enumerate([("vla_r1", "sha-111"), ("openvla", "sha-222"), (EVIL + "pol", "sha-333")]):
        for j, suite in enumerate(LIBERO):
            make_run(root, f"{suite}__{i}", {("t1", "in_domain"): (16 - 2 * i - 2 * j, 20), ("t2", "in_domain"): (14, 20),
                                             ("t1", "camera"): (8, 20), ("t2", "camera"): (10 - i, 20)},
                     suite=suite_dict(suite, tasks=("t1", "t2"), ood=("camera",)), policy=policy, checkpoint=ckpt,
                     instruction="put the bowl " + EVIL + " on {task}", videos=True, order_seed=i * 10 + j)
    make_run(root, "vm", {("coke", "in_domain"): (30, 40)}, suite=suite_dict("google_coke_vm", tasks=("coke",), ood=()), policy="pi0")
    make_run(root, "va", {("coke", "in_domain"): (20, 40)}, suite=suite_dict("google_coke_va", tasks=("coke",), ood=()), policy="pi0")
    make_run(root, "fast", {("cube", "in_domain"): (10, 40)},
             suite=suite_dict("tabletop_basic", tasks=("cube",), ood=(), render_quality="fast"), policy="fastpol")
    make_run(root, "ref", {("cube", "in_domain"): (30, 40)}, suite=suite_dict("tabletop_basic", tasks=("cube",), ood=()), policy="refpol")
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = _fixture_root(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("site")
    assert main(["report", str(root), "-o", str(out)]) == 0
    return root, out


def _sections(html_text):
    return {m.group(1): m.group(2) for m in re.finditer(r'<section id="board-([^"]+)"[^>]*>(.*?)</section>', html_text, re.S)}


def test_tables_per_family_and_fast_runs_apart(site):
    _, out = site
    html_text = (out / "index.html").read_text()
    boards = _sections(html_text)
    assert set(boards) == {"LIBERO", "google_coke_vm", "google_coke_va", "tabletop_basic", "tabletop_basic-fast"}
    libero = boards["LIBERO"]
    assert all(f"{s} ID %" in libero for s in LIBERO) and "mean ID %" in libero
    # vla_r1: t1 (16,14,12,10)/20 with t2 14/20 -> suite means 75, 70, 65, 60 % -> family mean 67.5 %
    rows = _board_rows(libero)
    assert [r["policy"] for r in rows][:2] == ["vla_r1", "openvla"]  # ranked by the family mean
    vla = rows[0]
    assert [vla[f"{s} ID %"].split(" [")[0] for s in LIBERO] == ["75.0", "70.0", "65.0", "60.0"]
    assert vla["mean ID % [95% CI]"].startswith("67.5 [")
    # openvla: t1 (14,12,10,8)/20, t2 14/20 -> 70, 65, 60, 55 -> 62.5; OOD (camera): t1 8/20, t2 9/20 -> 42.5 everywhere
    assert rows[1]["mean ID % [95% CI]"].startswith("62.5 [")
    assert rows[1]["OOD mean, vla_eval perturbations % (drop)"] == f"42.5 ({62.5 - 42.5:+.1f})" == "42.5 (+20.0)"  # ID minus OOD, as the run table
    assert vla["episodes"] == str(4 * 80) and vla["checkpoint"] == "sha-111"
    assert "refpol" in boards["tabletop_basic"] and "fastpol" not in boards["tabletop_basic"]
    assert "fastpol" in boards["tabletop_basic-fast"] and "refpol" not in boards["tabletop_basic-fast"]
    assert "visual matching" in html_text and "variant aggregation" in html_text
    assert "coke" not in boards["LIBERO"] and "pi0" not in boards["LIBERO"]


def _board_rows(section: str) -> list[dict]:
    import html as _html

    header = [_html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", section)]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", section, re.S):
        cells = [_html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
        if cells:
            rows.append(dict(zip(header, cells)))
    return rows


def test_plots_links_metadata(site):
    root, out = site
    html_text = (out / "index.html").read_text()
    imgs = re.findall(r'<img class="plot" src="([^"]+)"', html_text)
    assert "plots/LIBERO_bars.png" in imgs and "plots/LIBERO_ood.png" in imgs
    for src in imgs:
        with Image.open(out / src) as im:
            assert im.size[0] > 300 and np.asarray(im.convert("L")).std() > 10
    # video links point from site/ to the run folder's videos
    link = re.search(r'href="([^"]*videos/t1__in_domain__000\.mp4)"', html_text).group(1)
    target = (out / link).resolve()
    assert target.parent.name == "videos" and target.parent.parent.parent == root.resolve()
    assert (target.parent.parent / "episodes.sqlite").exists()  # the link lands in a run folder
    assert "sha-111" in html_text and "2025-06-01" in html_text and "camera" in html_text
    md = (out / "index.md").read_text()
    assert "| # | policy | checkpoint |" in md.replace("\\#", "#") and "](plots/LIBERO_bars.png)" in md


def test_user_strings_are_escaped(site):
    _, out = site
    for name in ("index.html", "index.md"):
        text = (out / name).read_text()
        assert "<script" not in text.lower()
        assert "&lt;script&gt;" in text


@pytest.fixture(scope="module")
def chromium_profile(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not installed (apt-get install chromium)")
    return tmp_path_factory.mktemp("chromium-profile")


def _chromium(profile, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)


def test_rendered_dom_has_no_script_element(site, chromium_profile):
    _, out = site
    res = _chromium(chromium_profile, "--dump-dom", (out / "index.html").as_uri())
    dom = res.stdout
    assert "<table" in dom and "<img" in dom
    assert "<script" not in dom.lower()  # the injected instruction / policy name stayed text
    assert "&lt;script&gt;alert" in dom


def test_screenshot_shows_table_and_plot(site, chromium_profile, tmp_path):
    _, out = site
    shot = tmp_path / "shot.png"
    _chromium(chromium_profile, "--window-size=1280,1400", f"--screenshot={shot}", (out / "index.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert px.shape[:2] == (1400, 1280)
    assert px.std() > 20  # not a blank page

    def share(rgb, tol=6):
        return float((np.abs(px - np.array(rgb)).max(axis=2) <= tol).mean())

    header = tuple(int(TH_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    assert share(header) > 0.01  # the leaderboard table header band is on screen
    assert share((31, 119, 180)) > 0.005  # matplotlib's C0 bars: the plot PNG loaded and rendered
    rows = np.where((np.abs(px - np.array(header)).max(axis=2) <= 6).mean(axis=1) > 0.3)[0]
    assert rows.size and rows.min() < 400  # the first table is near the top of the page


def test_backend_protocol_table_is_shown_escaped_and_results_never_import_code(tmp_path, monkeypatch):
    # a SimplerEnv suite gets its backend's calc_metrics table and headline column, group names escaped
    simpler = suite_dict("google_coke_vm", tasks=("coke",), ood=(), backend="simpler")
    simpler["backend_options"] = {"task_groups": {EVIL: ["coke"]}}
    make_run(tmp_path / "results", "sim", {("coke", "in_domain"): (3, 4)}, suite=simpler, policy="pi0")
    # a results folder naming module:Class as its backend must not get that module imported by the report
    (tmp_path / "h3_report_marker.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hostile = suite_dict("hostile", tasks=("cube",), ood=(), backend="h3_report_marker:Backend")
    make_run(tmp_path / "results", "hostile", {("cube", "in_domain"): (1, 2)}, suite=hostile, policy="x")
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "imported").exists()
    html_text = (tmp_path / "out" / "index.html").read_text()
    md = (tmp_path / "out" / "index.md").read_text()
    assert EVIL not in html_text and f"<td>group: {html.escape(EVIL, quote=True)}</td>" in html_text
    assert "<th>SimplerEnv-style aggregate % (mean over task groups)</th>" in html_text
    assert "| group: &lt;script&gt;alert(&\\#x27;x&\\#x27;)&lt;/script&gt; | 75.0 | 1 | 4 |" in md
