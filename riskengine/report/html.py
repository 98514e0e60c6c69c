"""A self-contained HTML report: headings, key figures, tables and embedded PNG plots."""

from __future__ import annotations

import base64
import html
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.6em; color: #333; }
table { border-collapse: collapse; margin: .6em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
.facts { display: flex; flex-wrap: wrap; gap: 1em; }
.fact { background: #f6f8fa; border: 1px solid #ddd; padding: .6em 1em; border-radius: 4px; }
.fact b { display: block; font-size: 20px; }
.bad { background: #fde8e8; }
.note { color: #555; font-size: 13px; }
img { max-width: 100%; }
"""


class Report:
    """Build a report section by section, then :meth:`write` it."""

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str) -> None:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def facts(self, items: dict[str, str]) -> None:
        cells = "".join(
            f'<div class="fact">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in items.items()
        )
        self._parts.append(f'<div class="facts">{cells}</div>')

    def table(self, frame: pd.DataFrame, *, float_format: str = "{:.6g}", highlight: pd.Series | None = None) -> None:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        rows = []
        for i, (_, row) in enumerate(frame.iterrows()):
            cells = []
            for value in row:
                if isinstance(value, float):
                    text, cls = ("—" if value != value else float_format.format(value)), ""
                elif isinstance(value, int | bool):
                    text, cls = str(value), ""
                else:
                    text, cls = ("—" if value is None else str(value)), ' class="text"'
                cells.append(f"<td{cls}>{html.escape(text)}</td>")
            bad = highlight is not None and bool(highlight.iloc[i])
            attr = ' class="bad"' if bad else ""
            rows.append(f"<tr{attr}>{''.join(cells)}</tr>")
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def figure(self, fig: Figure, *, alt: str, legend_and_grid: bool = False) -> None:
        """Embed ``fig`` as a PNG; ``legend_and_grid``: first give each of its axes a small
        legend and a light grid (the house style of our line charts)."""
        if legend_and_grid:
            for ax in fig.axes:
                ax.legend(fontsize=8)
                ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        # A figure made through pyplot stays registered there until closed; one made as a
        # matplotlib.figure.Figure never was, and needs no pyplot imported to be drawn.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        self._parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def equity_and_drawdown(self, curves: dict[str, tuple[Any, np.ndarray]], *, alt: str) -> None:
        """Equity curves (log scale) over their drawdowns, one line per name: ``curves`` maps
        a name to ``(dates, equity)``."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        for name, (dates, equity) in curves.items():
            equity = np.asarray(equity, np.float64)
            axes[0].plot(dates, equity, lw=1.2, label=name)
            axes[1].plot(dates, 1 - equity / np.maximum.accumulate(np.maximum(equity, 1.0)), lw=1.0, label=name)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("equity (log)")
        axes[1].set_ylabel("drawdown")
        axes[1].invert_yaxis()
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, ncol=4)
        fig.tight_layout()
        self.figure(fig, alt=alt)

    def render(self) -> str:
        body = "\n".join(self._parts)
        return (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )

    def write(self, path: Path) -> None:
        Path(path).write_text(self.render())
