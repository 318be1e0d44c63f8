"""Static leaderboard: Markdown + HTML + matplotlib PNGs from every run under a results root.

Design rules (docs/architecture.md §4, §6, §7), and why:

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

The work is split in three modules: :mod:`~vla_eval.results.report_view` (runs read into
:class:`RunView` s and grouped into boards), :mod:`~vla_eval.results.report_plots`
(matplotlib) and :mod:`~vla_eval.results.report_render` (HTML and Markdown).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vla_eval.results.report_plots import plot_bars, plot_ood
from vla_eval.results.report_render import TH_COLOR, esc, href, md_esc, render_html, render_markdown
from vla_eval.results.report_view import LIBERO_FAMILY, Board, Entry, RunView, boards_of, build_view, family_label
from vla_eval.results.runs import find_run_dirs, readable

__all__ = [
    "build_report",
    "Report",
    "Board",
    "Entry",
    "RunView",
    "family_label",
    "LIBERO_FAMILY",
    "TH_COLOR",
    "esc",
    "md_esc",
    "href",
]


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
    views = [build_view(d, info, recs) for d, info, recs in readable(find_run_dirs(root), with_records=True)]
    boards, superseded = boards_of(views)
    plots: dict[str, list[tuple[str, str]]] = {}
    written: list[Path] = []
    for b in boards:
        plots[b.slug] = []
        for kind, fn, alt in (
            ("bars", plot_bars, "success rate per policy with 95% CI"),
            ("ood", plot_ood, "in-domain vs OOD per policy"),
        ):
            p = out / "plots" / f"{b.slug}_{kind}.png"
            if fn(b, p):
                plots[b.slug].append((f"plots/{p.name}", alt))
                written.append(p)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    html_text = render_html(title, root, generated, boards, views, superseded, plots, out)
    md_text = render_markdown(title, root, generated, boards, views, plots, out)
    (out / "index.html").write_text(html_text, encoding="utf-8")
    (out / "index.md").write_text(md_text, encoding="utf-8")
    return Report(out / "index.html", out / "index.md", written, boards, len(views))
