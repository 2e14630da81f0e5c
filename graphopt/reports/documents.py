"""`optimize --report out.json | out.md | out.html`: the report as a file, with the plot."""

from __future__ import annotations

import base64
import html as html_lib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from graphopt.core.atomic import atomic_path
from graphopt.reports import optimize as report_mod

if TYPE_CHECKING:  # the result types of the ways in; reports do not import them
    from graphopt.api.files import OptimizeResult


def _headline(result: OptimizeResult) -> str:
    return Text.from_markup(report_mod.headline(result)).plain


def markdown(result: OptimizeResult, plot_path: str | None = None) -> str:
    rows = report_mod.summary_rows(result)
    lines = [f"# graphopt optimize {Path(result.model_path).name}", "", *_headline(result).splitlines(), ""]
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    lines += ["", "## Candidates", ""] + [f"{line}" for line in report_mod.candidate_lines(result)]
    if plot_path:
        lines += ["", f"![time by operator type]({Path(plot_path).name})"]
    lines += [""] + [f"note: {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def html(result: OptimizeResult, plot_path: str | None = None) -> str:
    esc = html_lib.escape
    rows = report_mod.summary_rows(result)
    table = (
        "<table>"
        + "".join(
            "<tr>"
            + "".join(f"<{'th' if i == 0 else 'td'}>{esc(cell)}</{'th' if i == 0 else 'td'}>" for cell in row)
            + "</tr>"
            for i, row in enumerate(rows)
        )
        + "</table>"
    )
    image = ""
    if plot_path:
        encoded = base64.b64encode(Path(plot_path).read_bytes()).decode()
        image = f'<img alt="time by operator type" src="data:image/png;base64,{encoded}">'
    items = "".join(f"<li>{esc(line)}</li>" for line in report_mod.candidate_lines(result))
    notes = "".join(f"<p>note: {esc(n)}</p>" for n in result.notes)
    head = "".join(f"<p>{esc(line)}</p>" for line in _headline(result).splitlines())
    style = "body{font-family:sans-serif;max-width:70em}td,th{padding:2px 8px;text-align:right}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>graphopt {esc(Path(result.model_path).name)}</title>"
        f"<style>{style}</style></head><body>"
        f"<h1>graphopt optimize {esc(Path(result.model_path).name)}</h1>{head}{table}"
        f"<h2>Candidates</h2><ul>{items}</ul>{image}{notes}</body></html>\n"
    )


def write(result: OptimizeResult, path: str | os.PathLike, plot_path: str | None = None) -> None:
    """The report in the format its name asks for: .json, .md (Markdown) or .html."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        text = json.dumps(report_mod.to_dict(result), indent=2, default=float)
    else:
        text = markdown(result, plot_path) if suffix == ".md" else html(result, plot_path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
