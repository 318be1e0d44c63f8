"""Static leaderboard: Markdown + HTML + matplotlib PNGs from every run under a results root.

Design rules (DESIGN §4, §6, §7), and why:

* One table per suite *family*. The LIBERO family shows libero_spatial / object / goal /
  libero_10 side by side and their mean (only when a policy has all four), because that
  mean is how papers report LIBERO. Every other suite is its own family; SimplerEnv-style
  suites ending in ``_vm`` (visual matching) and ``_va`` (variant aggregation) are
  different protocols and are never averaged together.
* Runs rendered with ``backend_options.render_quality == "fast"`` measure something
  slightly different (rendering changes success rates), so they get their own tables,
  marked, and are never ranked beside reference-quality runs.
* One row per (policy, checkpoint); when several runs exist for one suite the latest
  counts and the others are still listed under "All runs".
* Every string that a model, a suite author or a user wrote (policy names, checkpoints,
  task names, instructions, run ids, paths) is escaped with :func:`html.escape` in the HTML
  and additionally backslash-escaped in the Markdown, so an instruction like
  ``<script>...`` is shown as text and never executed. The page has no JavaScript at all
  and loads nothing from the network; it works from ``file://``.
"""

from __future__ import annotations

import hashlib
import html
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from vla_eval.results.runs import RunInfo, find_run_dirs, read_run, readable
from vla_eval.results.stats import wilson_interval
from vla_eval.tables import MEAN_ROW, drop_pts, summary_frame

LIBERO_FAMILY = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
MAX_VIDEO_LINKS = 4
TH_COLOR = "#1d3d6e"  # table header colour (the screenshot test looks for it)


FAMILY_TAGS = {"vla_eval": "", "libero_pro": "[LIBERO-PRO] "}
"""Column prefix naming who defined an OOD split (unmarked = this project's perturbations)."""


def family_of(suite: str) -> str:
    return "LIBERO" if suite in LIBERO_FAMILY else suite


def family_label(family: str) -> str:
    if family == "LIBERO":
        return "LIBERO (mean of " + ", ".join(LIBERO_FAMILY) + ")"
    if family.endswith("_vm"):
        return f"{family} (SimplerEnv-style visual matching)"
    if family.endswith("_va"):
        return f"{family} (SimplerEnv-style variant aggregation)"
    if family.startswith("simpler_") and family.endswith("_ext"):
        return f"{family} (vla-eval extension, not a SimplerEnv protocol)"
    return family


# ---------------------------------------------------------------- data


@dataclass
class RunView:
    info: RunInfo
    summary: pd.DataFrame
    instructions: dict[str, str]
    videos: dict[tuple[str, str], list[tuple[int, bool, str]]]  # (task, split) -> [(episode, success, path)]
    n: int
    gate: str | None = None
    """For a gated run (``run --gate``): where it stopped and its verdict; its intervals are repeated CIs."""
    protocol_groups: pd.DataFrame | None = None
    """SimplerEnv-style suites: calc_metrics-style aggregate per task group (vla_eval.sims.simpler.protocol)."""
    protocol_tasks: pd.DataFrame | None = None

    @property
    def anchor(self) -> str:
        digest = hashlib.sha1(str(self.info.run_dir.resolve()).encode()).hexdigest()[:8]
        return "run-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.info.run_id).strip("-") + "-" + digest

    def split_rate(self, split: str | None) -> tuple[float, float, float, int] | None:
        """Suite mean over tasks for one split: (rate, ci_low, ci_high, n)."""
        if split is None:
            return None
        row = self.summary[(self.summary["task"] == MEAN_ROW) & (self.summary["split"] == split)]
        if row.empty:
            return None
        r = row.iloc[0]
        return float(r["rate"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"])

    def id_rate(self):
        return self.split_rate(self.info.in_domain_split)

    def ood_splits(self, family: str | None = None) -> list[str]:
        """OOD splits present in the run; with ``family``, only those of that family (``vla_eval``, ``libero_pro``)."""
        present = set(self.summary["split"]) if not self.summary.empty else set()
        return [
            s for s in self.info.splits[1:]
            if s in present and (family is None or self.info.split_family.get(s, "vla_eval") == family)
        ]


def _view(run_dir: Path, info: RunInfo | None = None, records: list | None = None) -> RunView:
    if info is None or records is None:
        info, records = read_run(run_dir)
    recs = [r for _, r in records]
    summary = summary_frame(recs, info.splits or None, info.tasks or None)
    instructions: dict[str, str] = {}
    videos: dict[tuple[str, str], list[tuple[int, bool, str]]] = {}
    for r in recs:
        if r.split == info.in_domain_split and r.instruction and r.task not in instructions:
            instructions[r.task] = r.instruction
        if r.video_path:
            videos.setdefault((r.task, r.split), []).append((r.episode_index, r.success, r.video_path))
    for v in videos.values():
        v.sort()
    gate = None
    gate_meta = _gate_meta(run_dir)
    if gate_meta:
        from vla_eval.results.gate_run import gate_view

        state, summary, _ = gate_view(gate_meta, recs, summary)
        look = state.decisive_look
        gate = (f"stopped after {look.episodes if look else state.episodes_seen} of {state.design['plan_episodes']} planned "
                f"episodes; verdict {state.decision.replace('_', ' ')} against baseline {state.design['baseline'].get('run_id')}; "
                "intervals are 95% repeated CIs of the group-sequential design, not Wilson")
    view = RunView(info, summary, instructions, videos, len(recs), gate)
    suite = (info.config or {}).get("suite") or {}
    if suite.get("backend") in ("simpler", "simpler_real") and not summary.empty:
        from vla_eval.sims.simpler.protocol import group_aggregation, variant_aggregation

        view.protocol_groups = group_aggregation(summary, suite)
        view.protocol_tasks = variant_aggregation(summary, suite)
    return view


def _gate_meta(run_dir: Path):
    from vla_eval.store import RunStore

    with RunStore(run_dir, readonly=True) as store:
        return store.get_meta("gate")


def _protocol_rows(v: RunView) -> tuple[list[str], list[list[str]]] | None:
    """Rows of the SimplerEnv-style aggregate: task groups (calc_metrics) then the per-task means."""
    if v.protocol_groups is None or v.protocol_groups.empty:
        return None
    from vla_eval.sims.simpler.protocol import protocol_title

    title = protocol_title((v.info.config or {}).get("suite") or {})
    rows = [[f"group: {r.group}", f"{100 * r.aggregate:.1f}", str(r.cells), str(r.episodes)] for r in v.protocol_groups.itertuples()]
    rows += [[f"task: {r.task}", f"{100 * r.aggregate:.1f}", str(r.splits), str(r.episodes)] for r in v.protocol_tasks.itertuples()]
    return [f"{title} (mean over splits, then over a group's cells)", "success %", "cells / splits", "episodes"], rows


def protocol_headline(v: RunView) -> float | None:
    if v.protocol_groups is None or v.protocol_groups.empty:
        return None
    return float(v.protocol_groups.iloc[-1]["aggregate"])


@dataclass
class Entry:
    """One leaderboard row: a (policy, checkpoint) and its latest run per suite of the family."""

    policy: str
    checkpoint: str | None
    runs: dict[str, RunView] = field(default_factory=dict)

    def family_mean(self, suites: list[str]) -> tuple[float, float, float] | None:
        rates = [self.runs[s].id_rate() for s in suites if s in self.runs]
        if len(rates) != len(suites) or any(r is None for r in rates):
            return None
        k = sum(round(r[0] * r[3]) for r in rates)  # only for the pooled interval
        n = sum(r[3] for r in rates)
        lo, hi = wilson_interval(int(k), int(n))
        return float(np.mean([r[0] for r in rates])), lo, hi

    def ood_mean(self) -> tuple[float, float] | None:
        """(mean in-domain rate, mean OOD rate) over suites that have OOD splits.

        Only this project's perturbations: LIBERO-PRO's official columns are never averaged with them.
        """
        ids, oods = [], []
        for v in self.runs.values():
            idr = v.id_rate()
            rates = [v.split_rate(s) for s in v.ood_splits("vla_eval")]
            rates = [r[0] for r in rates if r]
            if idr and rates:
                ids.append(idr[0])
                oods.append(float(np.mean(rates)))
        return (float(np.mean(ids)), float(np.mean(oods))) if ids else None

    def sort_key(self, suites: list[str]):
        m = self.family_mean(suites) if len(suites) > 1 else None
        if m is None and len(suites) == 1 and suites[0] in self.runs and self.runs[suites[0]].id_rate():
            m = self.runs[suites[0]].id_rate()
        return (m is None, -(m[0] if m else 0.0), self.policy)


@dataclass
class Board:
    family: str
    fast: bool
    suites: list[str]
    entries: list[Entry]
    notes: list[str]
    stack: str | None = None
    """Set when the runs came from more than one simulator stack: one board per stack."""

    @property
    def title(self) -> str:
        return (
            family_label(self.family)
            + (" — fast render (not comparable with reference-quality runs)" if self.fast else "")
            + (f" — sim stack {self.stack} (not ranked with other stacks)" if self.stack else "")
        )

    @property
    def slug(self) -> str:
        stack = "-" + hashlib.sha1(self.stack.encode()).hexdigest()[:6] if self.stack else ""
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.family) + ("-fast" if self.fast else "") + stack


def _boards(views: list[RunView]) -> tuple[list[Board], list[RunView]]:
    groups: dict[tuple[str, bool, str], list[RunView]] = {}
    stacks = {str(v.info.protocol.get("sim_stack")) for v in views if v.n}
    for v in views:
        if v.n == 0:
            continue
        stack = str(v.info.protocol.get("sim_stack")) if len(stacks) > 1 else ""
        groups.setdefault((family_of(v.info.suite), v.info.is_fast_render, stack), []).append(v)
    boards, superseded = [], []
    for (family, fast, stack), vs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0] != "LIBERO", kv[0][0], kv[0][2])):
        suites = [s for s in LIBERO_FAMILY if any(v.info.suite == s for v in vs)] if family == "LIBERO" else [family]
        entries: dict[tuple[str, str | None], Entry] = {}
        for v in sorted(vs, key=lambda v: v.info.created_at or ""):
            e = entries.setdefault((v.info.policy, v.info.checkpoint), Entry(v.info.policy, v.info.checkpoint))
            if v.info.suite in e.runs:
                superseded.append(e.runs[v.info.suite])
            e.runs[v.info.suite] = v  # latest wins
        notes = []
        gated = sorted({e.runs[s].info.run_id for e in entries.values() for s in suites if s in e.runs and e.runs[s].gate})
        if gated:
            notes.append(f"gated runs (stopped early by `run --gate`; their intervals are 95% repeated CIs, not Wilson): {', '.join(gated)}")
        for s in suites:
            hashes = {e.runs[s].info.protocol.get("protocol_hash") for e in entries.values() if s in e.runs}
            if len(hashes) > 1:
                notes.append(f"{s}: rows use {len(hashes)} different protocols ({', '.join(sorted(map(str, hashes)))}); compare with care")
        if family == "LIBERO" and len(suites) < len(LIBERO_FAMILY):
            notes.append("family mean needs all four LIBERO suites; missing: " + ", ".join(s for s in LIBERO_FAMILY if s not in suites))
        boards.append(Board(family, fast, suites, sorted(entries.values(), key=lambda e: e.sort_key(suites)), notes, stack or None))
    return boards, superseded


# ---------------------------------------------------------------- plots


def _label(text: str) -> str:
    # matplotlib treats $...$ as mathtext; a policy name is plain text
    return text.replace("$", r"\$")


def _entry_label(e: Entry) -> str:
    return _label(e.policy + (f" @ {e.checkpoint[:12]}" if e.checkpoint else ""))


def _plot_bars(board: Board, path: Path) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = [e for e in board.entries if any(s in e.runs and e.runs[s].id_rate() for s in board.suites)]
    if not entries:
        return False
    fig = Figure(figsize=(max(5.0, 1.2 + 0.9 * len(entries) * len(board.suites) ** 0.5), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(board.suites)
    x = np.arange(len(entries))
    for i, suite in enumerate(board.suites):
        rates, lo, hi = [], [], []
        for e in entries:
            r = e.runs[suite].id_rate() if suite in e.runs else None
            rates.append(100 * r[0] if r else np.nan)
            lo.append(100 * (r[0] - r[1]) if r else 0)
            hi.append(100 * (r[2] - r[0]) if r else 0)
        ax.bar(x + (i - (len(board.suites) - 1) / 2) * width, rates, width, yerr=[lo, hi], capsize=3, label=_label(suite), color=f"C{i}")
    ax.set_xticks(x, [_entry_label(e) for e in entries], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("in-domain success % (95% Wilson CI)")
    ax.set_title(_label(family_label(board.family)), fontsize=10)
    if len(board.suites) > 1:
        ax.legend(fontsize=7, ncols=min(4, len(board.suites)))
    fig.tight_layout()
    fig.savefig(path)
    return True


def _plot_ood(board: Board, path: Path) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [(e, e.ood_mean()) for e in board.entries]
    rows = [(e, m) for e, m in rows if m]
    if not rows:
        return False
    fig = Figure(figsize=(max(5.0, 1.5 + 1.0 * len(rows)), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    ids = [100 * m[0] for _, m in rows]
    oods = [100 * m[1] for _, m in rows]
    ax.bar(x - 0.2, ids, 0.4, label="in-domain", color="C0")
    ax.bar(x + 0.2, oods, 0.4, label="out-of-domain (mean of OOD splits)", color="C1")
    for xi, a, b in zip(x, ids, oods):
        ax.annotate(drop_pts(a / 100, b / 100), (xi + 0.2, b), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [_entry_label(e) for e, _ in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("success %")
    ax.set_title(_label(f"{board.family}: in-domain vs OOD (drop in pts)"), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return True


# ---------------------------------------------------------------- rendering helpers


def esc(text) -> str:
    """HTML-escape any user/model-written value."""
    return html.escape("" if text is None else str(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_esc(text) -> str:
    """Markdown-safe text: HTML-escaped (Markdown passes raw HTML through) and backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", esc(text)).replace("\n", " ")


def href(path: str) -> str:
    """URL-quote a relative path so that it stays a path (never ``javascript:``) and escape it."""
    return esc(urllib.parse.quote(path.replace("\\", "/"), safe="/"))


def _pct(r) -> str:
    if not r:
        return "—"
    return f"{100 * r[0]:.1f} [{100 * r[1]:.1f}, {100 * r[2]:.1f}]"


def _date(info: RunInfo) -> str:
    return (info.created_at or "")[:10] or "—"


def _short(h) -> str:
    return str(h)[:10] if h else "—"


def _rel(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


# ---------------------------------------------------------------- the report


@dataclass
class Report:
    html_path: Path
    markdown_path: Path
    plots: list[Path]
    boards: list[Board]
    runs: int


def build_report(root: str | Path, out_dir: str | Path, title: str = "vla-eval leaderboard") -> Report:
    """Render ``index.html``, ``index.md`` and ``plots/*.png`` into ``out_dir``."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    views = [_view(d, info, recs) for d, info, recs in readable(find_run_dirs(root), with_records=True)]
    boards, superseded = _boards(views)
    plots: dict[str, list[tuple[str, str]]] = {}
    written: list[Path] = []
    for b in boards:
        plots[b.slug] = []
        for kind, fn, alt in (("bars", _plot_bars, "success rate per policy with 95% CI"), ("ood", _plot_ood, "in-domain vs OOD per policy")):
            p = out / "plots" / f"{b.slug}_{kind}.png"
            if fn(b, p):
                plots[b.slug].append((f"plots/{p.name}", alt))
                written.append(p)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    html_text = _html(title, root, generated, boards, views, superseded, plots, out)
    md_text = _markdown(title, root, generated, boards, views, plots, out)
    (out / "index.html").write_text(html_text, encoding="utf-8")
    (out / "index.md").write_text(md_text, encoding="utf-8")
    return Report(out / "index.html", out / "index.md", written, boards, len(views))


def _board_rows(b: Board) -> tuple[list[str], list[list]]:
    """Header and cells of one leaderboard table: ``(text, None)`` or a list of ``(text, link)``.

    Text is NOT escaped here; each renderer escapes for its own format.
    """
    multi = len(b.suites) > 1
    header = ["#", "policy", "checkpoint"]
    ood_splits: list[str] = []
    if multi:
        header += [f"{s} ID %" for s in b.suites] + ["mean ID % [95% CI]", "OOD mean, vla_eval perturbations % (drop)"]
    else:
        for e in b.entries:
            for s in e.runs[b.suites[0]].ood_splits():
                if s not in ood_splits:
                    ood_splits.append(s)
        fam = {s: f for e in b.entries for s, f in e.runs[b.suites[0]].info.split_family.items()}
        header += ["in-domain % [95% CI]"] + [f"{FAMILY_TAGS.get(fam.get(s) or 'vla_eval', '')}{s} % (drop)" for s in ood_splits]
        simpler = any(protocol_headline(e.runs[b.suites[0]]) is not None for e in b.entries)
        if simpler:
            header += ["SimplerEnv-style aggregate % (mean over task groups)"]
    header += ["episodes", "date", "protocol", "run"]
    rows = []
    for i, e in enumerate(b.entries, 1):
        cells: list = [(str(i), None), (e.policy, None), (e.checkpoint or "—", None)]
        if multi:
            cells += [(_pct(e.runs[s].id_rate()) if s in e.runs else "—", None) for s in b.suites]
            cells.append((_pct(e.family_mean(b.suites)), None))
            m = e.ood_mean()
            cells.append((f"{100 * m[1]:.1f} ({drop_pts(m[0], m[1])})" if m else "—", None))
        else:
            v = e.runs[b.suites[0]]
            idr = v.id_rate()
            cells.append((_pct(idr), None))
            for s in ood_splits:
                r = v.split_rate(s)
                cells.append((f"{_pct(r)} ({drop_pts(idr[0], r[0])})" if r and idr else "—", None))
            if simpler:
                h = protocol_headline(v)
                cells.append((f"{100 * h:.1f}" if h is not None else "—", None))
        runs = [e.runs[s] for s in b.suites if s in e.runs]
        cells.append((str(sum(v.n for v in runs)), None))
        cells.append((max(_date(v.info) for v in runs), None))
        cells.append((", ".join(_short(v.info.protocol.get("protocol_hash")) for v in runs), None))
        # one link per run: the run id for a single suite, the suite name within a family
        cells.append([(v.info.suite if multi else v.info.run_id, "#" + v.anchor) for v in runs])
        rows.append(cells)
    return header, rows


def _task_rows(v: RunView, out: Path) -> tuple[list[str], list[list[str]], list[list[list[tuple[str, str]]]]]:
    splits = [s for s in v.info.splits if s in set(v.summary["split"])] or list(dict.fromkeys(v.summary["split"]))
    in_domain = v.info.in_domain_split
    ci = "95% repeated CI" if v.gate else "95% CI"
    header = ["task"] + [f"{s} % [{ci}] (n)" + ("" if s == in_domain else " / drop") for s in splits] + ["videos"]
    lookup = v.summary.set_index(["task", "split"]) if not v.summary.empty else None
    tasks = list(dict.fromkeys(v.summary["task"])) if not v.summary.empty else []
    rows, links = [], []
    for task in tasks:
        cells = [task]
        for s in splits:
            if lookup is None or (task, s) not in lookup.index:
                cells.append("—")
                continue
            r = lookup.loc[(task, s)]
            text = f"{100 * r['rate']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] ({int(r['n'])})"
            if s != in_domain and (task, in_domain) in lookup.index:
                text += f" / {drop_pts(lookup.loc[(task, in_domain)]['rate'], r['rate'])}"
            cells.append(text)
        vids = []
        for s in splits:
            for ep, ok, path in v.videos.get((task, s), [])[:MAX_VIDEO_LINKS]:
                target = Path(path) if Path(path).is_absolute() else v.info.run_dir / path
                vids.append((f"{s} #{ep} {'✓' if ok else '✗'}", _rel(target, out)))
        rows.append(cells)
        links.append([vids])
    return header, rows, links


_CSS = f"""
body {{ font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fff; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }} h2 {{ margin-top: 2rem; font-size: 1.2rem; }} h3 {{ font-size: 1.0rem; }}
table {{ border-collapse: collapse; margin: .6rem 0; font-size: .85rem; }}
th {{ background: {TH_COLOR}; color: #fff; padding: .35rem .6rem; text-align: left; }}
td {{ border-bottom: 1px solid #d4d9e1; padding: .3rem .6rem; vertical-align: top; }}
tr:nth-child(even) td {{ background: #f3f6fa; }}
.meta {{ color: #555; font-size: .8rem; }} .note {{ color: #8a4b00; font-size: .85rem; }}
.fast {{ border-left: 4px solid #c77700; padding-left: .6rem; }}
.instr {{ color: #555; font-size: .75rem; }}
img.plot {{ max-width: 100%; border: 1px solid #d4d9e1; margin: .3rem .6rem .3rem 0; }}
code {{ font-size: .8rem; }}
"""


def _html(title, root, generated, boards: list[Board], views: list[RunView], superseded, plots, out: Path) -> str:
    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src \'self\' data: file:; style-src \'unsafe-inline\'; media-src \'self\' file:">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">generated {esc(generated)} from <code>{esc(root)}</code>: {len(views)} runs. '
        "Rates are success % with 95% Wilson intervals; ID = in-domain split, drops are ID minus OOD in points (positive = worse out of domain, as in `vla-eval table`). "
        "Fast-render runs are listed separately and never ranked with reference-quality runs.</p>",
    ]
    if not boards:
        p.append("<p>No finished episodes under this results root.</p>")
    for b in boards:
        cls = ' class="fast"' if b.fast else ""
        p.append(f'<section id="board-{esc(b.slug)}"{cls}><h2>{esc(b.title)}</h2>')
        header, rows = _board_rows(b)
        p.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for cells in rows:
            tds = []
            for cell in cells:
                if isinstance(cell, list):
                    tds.append("<td>" + "<br>".join(f'<a href="{esc(link)}">{esc(text)}</a>' for text, link in cell) + "</td>")
                else:
                    tds.append(f"<td>{esc(cell[0])}</td>")
            p.append("<tr>" + "".join(tds) + "</tr>")
        p.append("</tbody></table>")
        p += [f'<p class="note">{esc(n)}</p>' for n in b.notes]
        p += [f'<img class="plot" src="{href(src)}" alt="{esc(alt)}">' for src, alt in plots.get(b.slug, [])]
        p.append("</section>")
    p.append("<h2>Runs: per-task breakdown</h2>")
    for v in views:
        p.append(_html_run(v, out, v in superseded))
    p.append("<h2>All runs</h2><table><thead><tr>" + "".join(
        f"<th>{h}</th>" for h in ("run", "suite", "policy", "checkpoint", "created", "protocol hash", "render", "episodes")
    ) + "</tr></thead><tbody>")
    for v in views:
        i = v.info
        p.append(
            f'<tr><td><a href="#{esc(v.anchor)}">{esc(i.run_id)}</a></td><td>{esc(i.suite)}</td><td>{esc(i.policy)}</td>'
            f"<td>{esc(i.checkpoint or '—')}</td><td>{esc(i.created_at or '—')}</td><td>{esc(i.protocol.get('protocol_hash') or '—')}</td>"
            f"<td>{esc(i.render_quality or 'reference')}</td><td>{v.n}</td></tr>"
        )
    p.append("</tbody></table></body></html>")
    return "\n".join(p)


def _meta_items(v: RunView) -> list[tuple[str, str]]:
    i, pr = v.info, v.info.protocol
    cfg = i.config
    git = cfg.get("git") or {}
    versions = cfg.get("versions") or {}
    return [
        ("suite", i.suite),
        ("policy", f"{i.policy} (adapter {i.policy_adapter})"),
        ("checkpoint", i.checkpoint or "—"),
        ("created", i.created_at or "—"),
        ("protocol hash", pr.get("protocol_hash") or "—"),
        ("suite hash", pr.get("suite_hash") or "—"),
        ("max steps / settle", f"{pr.get('max_steps')} / {pr.get('settle_steps')}"),
        ("image size", str(pr.get("image_size"))),
        ("render quality", pr.get("render_quality") or "reference"),
        ("sim stack", pr.get("sim_stack") or "—"),
        ("episodes", str(v.n)),
        *([("gated run", v.gate)] if v.gate else []),
        ("git", f"{git.get('commit', '—')}{' (dirty)' if git.get('dirty') else ''}" if git else "—"),
        ("versions", ", ".join(f"{k} {val}" for k, val in sorted(versions.items()))),
        ("folder", str(i.run_dir)),
    ]


def _html_run(v: RunView, out: Path, superseded: bool) -> str:
    i = v.info
    p = [f'<section id="{esc(v.anchor)}"><h3>{esc(i.run_id)}</h3>']
    if superseded:
        p.append('<p class="note">a later run of the same policy, checkpoint and suite is used in the leaderboard</p>')
    if i.is_fast_render:
        p.append('<p class="note">fast render: not comparable with reference-quality runs</p>')
    p.append('<p class="meta">' + " · ".join(f"<b>{esc(k)}</b>: {esc(val)}" for k, val in _meta_items(v)) + "</p>")
    header, rows, links = _task_rows(v, out)
    p.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for cells, (vids,) in zip(rows, links):
        task = cells[0]
        instr = v.instructions.get(task)
        first = f"<td>{esc(task)}" + (f'<div class="instr">{esc(instr)}</div>' if instr else "") + "</td>"
        vid_html = " ".join(f'<a href="{href(path)}">{esc(label)}</a>' for label, path in vids) or "—"
        p.append("<tr>" + first + "".join(f"<td>{esc(c)}</td>" for c in cells[1:]) + f"<td>{vid_html}</td></tr>")
    p.append("</tbody></table>")
    prot = _protocol_rows(v)
    if prot:
        p.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in prot[0]) + "</tr></thead><tbody>")
        p += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in prot[1]]
        p.append("</tbody></table>")
    p.append("</section>")
    return "\n".join(p)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


def _markdown(title, root, generated, boards: list[Board], views: list[RunView], plots, out: Path) -> str:
    lines = [
        f"# {md_esc(title)}",
        "",
        f"Generated {md_esc(generated)} from `{md_esc(root)}` ({len(views)} runs). Success % with 95% Wilson intervals; "
        "drops are in-domain minus OOD in points (positive = worse out of domain). Fast-render runs are never ranked with reference-quality runs.",
    ]
    for b in boards:
        lines += ["", f"## {md_esc(b.title)}", ""]
        header, rows = _board_rows(b)
        body = [
            [" ".join(f"[{md_esc(t)}]({esc(link)})" for t, link in c) if isinstance(c, list) else md_esc(c[0]) for c in cells]
            for cells in rows
        ]
        lines += _md_table([md_esc(h) for h in header], body)
        lines += [f"\n> {md_esc(n)}" for n in b.notes]
        lines += [f"\n![{md_esc(alt)}]({href(src)})" for src, alt in plots.get(b.slug, [])]
    lines += ["", "## Runs: per-task breakdown"]
    for v in views:
        lines += ["", f'<a id="{esc(v.anchor)}"></a>', f"### {md_esc(v.info.run_id)}", ""]
        lines += ["- " + f"**{md_esc(k)}**: {md_esc(val)}" for k, val in _meta_items(v)]
        header, rows, links = _task_rows(v, out)
        body = []
        for cells, (vids,) in zip(rows, links):
            instr = v.instructions.get(cells[0])
            first = md_esc(cells[0]) + (f" — {md_esc(instr)}" if instr else "")
            vid = " ".join(f"[{md_esc(label)}]({href(path)})" for label, path in vids) or "—"
            body.append([first] + [md_esc(c) for c in cells[1:]] + [vid])
        lines += [""] + _md_table([md_esc(h) for h in header], body)
        prot = _protocol_rows(v)
        if prot:
            lines += [""] + _md_table([md_esc(h) for h in prot[0]], [[md_esc(c) for c in row] for row in prot[1]])
    return "\n".join(lines) + "\n"
