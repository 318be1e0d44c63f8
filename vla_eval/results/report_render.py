"""The report's HTML and Markdown: the same tables rendered twice, each escaped for its own format.

Every string that a model, a suite author or a user wrote is escaped with :func:`esc` in the
HTML and :func:`md_esc` in the Markdown (see :mod:`vla_eval.results.report`); the table
builders return raw text so neither renderer can receive half-escaped cells.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path

from vla_eval.results.report_view import FAMILY_TAGS, Board, RunView, protocol_headline
from vla_eval.results.runs import RunInfo
from vla_eval.tables import drop_pts

MAX_VIDEO_LINKS = 4
TH_COLOR = "#1d3d6e"  # table header colour (the screenshot test looks for it)


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


def board_rows(b: Board) -> tuple[list[str], list[list]]:
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
        header += ["in-domain % [95% CI]"] + [
            f"{FAMILY_TAGS.get(fam.get(s) or 'vla_eval', '')}{s} % (drop)" for s in ood_splits
        ]
        headlines = [protocol_headline(e.runs[b.suites[0]]) for e in b.entries]
        labels = list(dict.fromkeys(h[0] for h in headlines if h))
        header += labels
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
            h = protocol_headline(v)
            cells += [(f"{100 * h[1]:.1f}" if h and h[0] == label else "—", None) for label in labels]
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
body {{ font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 1.5rem; color: #1b1b1b;
       background: #fff; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }} h2 {{ margin-top: 2rem; font-size: 1.2rem; }}
h3 {{ font-size: 1.0rem; }}
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


def render_html(title, root, generated, boards: list[Board], views: list[RunView], superseded, plots, out: Path) -> str:
    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' data: file:; "
        "style-src 'unsafe-inline'; media-src 'self' file:\">",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">generated {esc(generated)} from <code>{esc(root)}</code>: {len(views)} runs. '
        "Rates are success % with 95% Wilson intervals; ID = in-domain split, drops are ID minus OOD in points "
        "(positive = worse out of domain, as in `vla-eval table`). "
        "Fast-render runs are listed separately and never ranked with reference-quality runs.</p>",
    ]
    if not boards:
        p.append("<p>No finished episodes under this results root.</p>")
    for b in boards:
        cls = ' class="fast"' if b.fast else ""
        p.append(f'<section id="board-{esc(b.slug)}"{cls}><h2>{esc(b.title)}</h2>')
        header, rows = board_rows(b)
        p.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for cells in rows:
            tds = []
            for cell in cells:
                if isinstance(cell, list):
                    tds.append(
                        "<td>" + "<br>".join(f'<a href="{esc(link)}">{esc(text)}</a>' for text, link in cell) + "</td>"
                    )
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
    p.append(
        "<h2>All runs</h2><table><thead><tr>"
        + "".join(
            f"<th>{h}</th>"
            for h in ("run", "suite", "policy", "checkpoint", "created", "protocol hash", "render", "episodes")
        )
        + "</tr></thead><tbody>"
    )
    for v in views:
        i = v.info
        p.append(
            f'<tr><td><a href="#{esc(v.anchor)}">{esc(i.run_id)}</a></td><td>{esc(i.suite)}</td>'
            f"<td>{esc(i.policy)}</td><td>{esc(i.checkpoint or '—')}</td><td>{esc(i.created_at or '—')}</td>"
            f"<td>{esc(i.protocol.get('protocol_hash') or '—')}</td>"
            f"<td>{esc(i.render_quality or 'reference')}</td><td>{v.n}</td></tr>"
        )
    p.append("</tbody></table></body></html>")
    return "\n".join(p)


def _meta_items(v: RunView) -> list[tuple[str, str]]:
    i, pr = v.info, v.info.protocol
    git = i.meta.git or {}
    versions = i.meta.versions
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
    for table in v.protocol:
        p.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr></thead><tbody>")
        p += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows]
        p.append("</tbody></table>")
    p.append("</section>")
    return "\n".join(p)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


def render_markdown(title, root, generated, boards: list[Board], views: list[RunView], plots, out: Path) -> str:
    lines = [
        f"# {md_esc(title)}",
        "",
        f"Generated {md_esc(generated)} from `{md_esc(root)}` ({len(views)} runs). "
        "Success % with 95% Wilson intervals; drops are in-domain minus OOD in points "
        "(positive = worse out of domain). Fast-render runs are never ranked with reference-quality runs.",
    ]
    for b in boards:
        lines += ["", f"## {md_esc(b.title)}", ""]
        header, rows = board_rows(b)
        body = [
            [
                " ".join(f"[{md_esc(t)}]({esc(link)})" for t, link in c) if isinstance(c, list) else md_esc(c[0])
                for c in cells
            ]
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
        for table in v.protocol:
            lines += [""] + _md_table(
                [md_esc(h) for h in table.header], [[md_esc(c) for c in row] for row in table.rows]
            )
    return "\n".join(lines) + "\n"
