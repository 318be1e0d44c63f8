"""The report's matplotlib figures: in-domain bars with Wilson intervals, and in-domain vs OOD per policy.

Rendered with the Agg canvas directly (no pyplot state), so building a report never opens a
window or touches a global figure list, and works without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_eval.results.report_view import Board, Entry, family_label
from vla_eval.tables import drop_pts


def _label(text: str) -> str:
    # matplotlib treats $...$ as mathtext; a policy name is plain text
    return text.replace("$", r"\$")


def _entry_label(e: Entry) -> str:
    return _label(e.policy + (f" @ {e.checkpoint[:12]}" if e.checkpoint else ""))


def plot_bars(board: Board, path: Path) -> bool:
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
        ax.bar(
            x + (i - (len(board.suites) - 1) / 2) * width,
            rates,
            width,
            yerr=[lo, hi],
            capsize=3,
            label=_label(suite),
            color=f"C{i}",
        )
    ax.set_xticks(x, [_entry_label(e) for e in entries], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("in-domain success % (95% Wilson CI)")
    ax.set_title(_label(family_label(board.family)), fontsize=10)
    if len(board.suites) > 1:
        ax.legend(fontsize=7, ncols=min(4, len(board.suites)))
    fig.tight_layout()
    fig.savefig(path)
    return True


def plot_ood(board: Board, path: Path) -> bool:
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
