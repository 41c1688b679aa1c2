"""The reports' charts, drawn by matplotlib as inline SVG with axes, ticks and a legend.

A value is drawn where it is: lines that coincide are told apart by marker and dash only, never moved. The SVG is
the same for the same data (a fixed hash salt for its ids, no date) and keeps text as text, so a browser, a test
or a reader's search finds the labels. Each chart draws its elements with ids `<chart id>-...` (`gid`), which
`_svg` can give data attributes and a tooltip.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field

COLOURS = {"als": "#1f77b4", "popularity": "#ff7f0e", "hybrid": "#2ca02c", "taste": "#d62728", "item_knn": "#9467bd",
           "user_knn": "#8c564b", "ease": "#e377c2", "content": "#17becf", "weighted_ratings": "#7f7f7f"}
# models often score alike (the hybrid is mostly ALS): each line its own dash and hollow marker (20 pairs)
DASHES = ("solid", (0, (6, 3)), (0, (2, 3)), (0, (8, 3, 2, 3)))
MARKERS = ("o", "s", "^", "D", "v")
FLAGGED = "#c62828"  # the outline of a bar segment that failed


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar: its legend entry, length, tooltip, the data attributes the page's tests read."""
    key: str
    value: float
    title: str
    marks: dict[str, str] = field(default_factory=dict)
    flagged: bool = False


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")


def _svg(figure, chart_id: str, marks: dict[str, tuple[dict[str, str], str]] | None = None) -> str:
    """The figure as an <svg id=chart_id> element for an HTML page; marks: gid -> (data attributes, tooltip)."""
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": chart_id, "svg.id": chart_id, "svg.fonttype": "none"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    for gid, (attributes, title) in (marks or {}).items():
        extra = "".join(f' {name}="{html.escape(value)}"' for name, value in attributes.items())
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"{extra}><title>{html.escape(title)}</title>', 1)
    return svg


def line_chart(curves: dict[str, dict], chart_id: str, x_label: str, y_label: str) -> str:
    """One line per model over integer x values (k in the run report, a run's position in the morning report);
    each model's line has the id `<chart_id>-<model>`."""
    xs = sorted({int(x) for curve in curves.values() for x in curve})
    if not xs:
        return ""
    from matplotlib.ticker import MaxNLocator

    figure = _figure(680, 320)
    axes = figure.add_subplot()
    for i, (model, curve) in enumerate(curves.items()):
        points = sorted((int(x), float(v)) for x, v in curve.items())
        colour = COLOURS.get(model, "#555555")
        (line,) = axes.plot([x for x, _ in points], [v for _, v in points], label=model, color=colour, linewidth=1.8,
                            linestyle=DASHES[i % len(DASHES)], marker=MARKERS[i % len(MARKERS)], markersize=7,
                            markerfacecolor="none", markeredgewidth=1.5)
        line.set_gid(f"{chart_id}-{model}")
    if len(xs) <= 12:
        axes.set_xticks(xs)
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0, top=max(v for curve in curves.values() for v in curve.values()) * 1.08 or 1.0)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(figure, chart_id)


def stacked_bars(bars: list[tuple[str, list[Segment]]], colours: dict[str, str], chart_id: str, x_label: str,
                 unit: str) -> str:
    """One horizontal bar per label, the first on top, a segment per part as long as its value, the total at its
    end; each segment has the id `<chart_id>-<bar>-<segment>` with its marks and tooltip."""
    if not bars:
        return ""
    from matplotlib.patches import Patch

    figure = _figure(760, 18 * len(bars) + 130)
    axes = figure.add_subplot()
    marks = {}
    for row, (label, segments) in enumerate(bars):
        left = 0.0
        for j, segment in enumerate(segments):
            flagged = {"edgecolor": FLAGGED, "linewidth": 2} if segment.flagged else {"linewidth": 0}
            (patch,) = axes.barh(row, segment.value, left=left, height=0.75,
                                 color=colours.get(segment.key, "#999999"), **flagged).patches
            gid = f"{chart_id}-{row}-{j}"
            patch.set_gid(gid)
            marks[gid] = (segment.marks, segment.title)
            left += segment.value
        axes.text(left, row, f" {left:.0f} {unit}", va="center", fontsize=9)
    axes.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=9)
    axes.set_ylim(len(bars) - 0.5, -0.5)  # the first bar on top
    axes.margins(x=0.12)
    axes.set_xlabel(x_label)
    axes.legend(handles=[Patch(color=colour, label=key) for key, colour in colours.items()], frameon=False,
                loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=9)
    return _svg(figure, chart_id, marks)

