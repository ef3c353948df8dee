"""Return monthly trend charts as accessible, deterministic SVG (matplotlib).

Each SVG carries a <title> and <desc>; the page shows the same numbers as a
table, so no chart needs JavaScript, or sight, to be read.
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Sequence

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams.update({
    "svg.hashsalt": "wenzheng", "svg.fonttype": "none", "font.size": 9,
    # Text stays text (svg.fonttype none): the reader's browser draws it with its own
    # CJK fonts; matplotlib only needs a font for layout.
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
})


# Where the axis label goes in a drawing shared by every language.
UNIT_MARK = "WZUNIT"


def line_chart(title: str, desc: str, months: Sequence[str], values: Sequence[float | None],
               unit: str) -> str:
    """Return an SVG line chart of ``values`` by month with a title and description."""
    return labelled(drawing(months, values, unit == "%"), title, desc, unit)


def drawing(months: Sequence[str], values: Sequence[float | None], percent: bool) -> str:
    """Return the SVG of ``values`` by month, without title, description or unit:
    drawn once, then labelled in each language (:func:`labelled`)."""
    with warnings.catch_warnings():
        # Missing CJK glyphs only affect matplotlib's layout estimate: the text stays
        # text in the SVG and the reader's browser draws it.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        return _draw(months, values, percent)


def labelled(svg: str, title: str, desc: str, unit: str) -> str:
    """Return a drawing with its title, description and axis unit."""
    return _insert(svg.replace(f">{UNIT_MARK}</text>", f">{_x(unit)}</text>", 1), title, desc)


def _draw(months: Sequence[str], values: Sequence[float | None], percent: bool) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 2.4), dpi=100)
    xs = list(range(len(months)))
    ax.plot([x for x, v in zip(xs, values) if v is not None],
            [v for v in values if v is not None], marker="o", color="#c62828", linewidth=1.5)
    step = max(1, len(months) // 8)
    ax.set_xticks(xs[::step], [m for m in months[::step]])
    ax.set_ylabel(UNIT_MARK)
    if percent:
        ax.set_ylim(0, 100)
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, color="#dddddd", linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    # Title and description go in as <title>/<desc> (:func:`labelled`), which
    # readers use, not as matplotlib's RDF metadata.
    return re.sub(r"<metadata>.*?</metadata>", "", buf.getvalue(), flags=re.S)


def _x(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _insert(svg: str, title: str, desc: str) -> str:
    m = re.search(r"<svg[^>]*>", svg)
    assert m
    tag = m.group(0)[:-1] + ' role="img" aria-labelledby="wz-t wz-d">'
    return (svg[:m.start()] + tag + f'<title id="wz-t">{_x(title)}</title><desc id="wz-d">{_x(desc)}</desc>'
            + svg[m.end():])
