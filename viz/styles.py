"""How a diagram looks: one style per category of op, the legend, cluster and edge styles.

Every drawn box belongs to a category (an op's `category`, or a collapsed group's, see
`minigraph.scopes.group_category`); a category has a fill, a border and a legend text. Gradient boxes keep their category's shape but are drawn dashed in orange.
"""
from __future__ import annotations

from typing import Dict, Iterable, NamedTuple

FONT = "Helvetica"


class Style(NamedTuple):
    fill: str
    border: str
    legend: str
    shape: str = "box"
    style: str = "rounded,filled"


CATEGORIES: Dict[str, Style] = {
    "input": Style("#eeeeee", "#666666", "input (placeholder)", style="filled"),
    "conv": Style("#cfe2f3", "#3d85c6", "convolution k×k/stride, filters"),
    "conv1x1": Style("#fff2cc", "#bf9000", "1×1 convolution, filters"),
    "pool": Style("#f4cccc", "#cc0000", "pooling k×k/stride"),
    "concat": Style("#d9ead3", "#38761d", "filter concatenation"),
    "inception": Style("#d0e0e3", "#45818e", "Inception module: filters per branch (1×1 reduce → conv)"),
    "linear": Style("#d9d2e9", "#674ea7", "linear (fully connected), units"),
    "block": Style("#f3f3f3", "#434343", "composite block (its layers in order)"),
    "other": Style("#ffffff", "#888888", "other (LRN, dropout, softmax, ...)"),
    "variable": Style("#f3f3f3", "#999999", "variable / constant", shape="ellipse", style="filled"),
}
GRADIENT = Style("#fce5cd", "#e69138", "gradient node (mg.gradients)", style="rounded,filled,dashed")
LEGEND_ORDER = ("input", "conv", "conv1x1", "pool", "concat", "inception", "linear", "block", "other", "variable")

def node_attrs(category: str, gradient: bool = False) -> Dict[str, str]:
    """Graphviz attributes of a box of this category."""
    s = CATEGORIES[category]
    attrs = {"shape": s.shape, "style": s.style, "fillcolor": s.fill, "color": s.border}
    if gradient:
        attrs.update(style="rounded,filled,dashed" if s.shape == "box" else "filled,dashed",
                     fillcolor=GRADIENT.fill, color=GRADIENT.border, fontcolor="#7f4f00")
    return attrs


GRAPH_ATTRS = {"fontname": FONT, "newrank": "true", "ordering": "out", "nodesep": "0.22", "ranksep": "0.32",
               "pad": "0.2", "bgcolor": "white", "labelloc": "t"}
# A collapsed network keeps its natural size (11-point text, 13 px in an SVG at 100% zoom:
# never scaled down to a page, where its branch headings became unreadable) with tighter ranks.
COLLAPSED_GRAPH_ATTRS = {"ranksep": "0.2", "nodesep": "0.3"}
NODE_ATTRS = {"fontname": FONT, "fontsize": "11", "height": "0.32", "margin": "0.14,0.05", "penwidth": "1.2"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "8.5", "fontcolor": "#555555", "color": "#555555",
              "arrowsize": "0.6", "penwidth": "1.0"}
GRADIENT_EDGE = {"color": "#e69138", "style": "dashed", "fontcolor": "#b45f06"}


def cluster_attrs(depth: int, gradient: bool = False) -> Dict[str, str]:
    """A name-scope cluster: solid for top-level scopes, dashed and lighter when nested."""
    if gradient:
        return {"style": "rounded,dashed", "color": GRADIENT.border, "fontcolor": "#b45f06",
                "fontsize": "10", "fontname": FONT, "labeljust": "l", "bgcolor": "#fffaf3"}
    if depth == 1:
        return {"style": "rounded,filled", "color": "#7f7f7f", "fillcolor": "#fafafa", "fontsize": "11",
                "fontname": FONT + " Bold", "labeljust": "l", "penwidth": "1.2"}
    return {"style": "rounded,dashed", "color": "#b7b7b7", "fontsize": "9", "fontcolor": "#666666",
            "fontname": FONT, "labeljust": "l", "penwidth": "0.8"}


def legend_label(categories: Iterable[str], gradients: bool, shapes: bool, caption: str = "",
                 columns: int = 0, extra: Iterable = ()) -> str:
    """An HTML-like Graphviz label: an optional caption, then one swatch and one line of text
    per category drawn, `columns` entries a row (0: 3 when that fills the rows, else 2).
    `extra` adds (fill, border, text) entries after the categories (e.g. a diff's marks)."""
    present = set(categories)
    entries = [_legend_entry(CATEGORIES[c].fill, CATEGORIES[c].border, CATEGORIES[c].legend)
               for c in LEGEND_ORDER if c in present]
    if gradients:
        entries.append(_legend_entry(GRADIENT.fill, GRADIENT.border, GRADIENT.legend))
    entries.extend(_legend_entry(fill, border, text) for fill, border, text in extra)
    if shapes:
        entries.append('<TD ALIGN="RIGHT"><FONT POINT-SIZE="11">→</FONT></TD>'
                       '<TD ALIGN="LEFT">tensor shape C×H×W (batch left out)</TD>')
    columns = columns or (3 if len(entries) in (3, 5, 6, 9) else 2)
    rows = ["<TR>" + "".join(entries[i:i + columns]) + "</TR>" for i in range(0, len(entries), columns)]
    head = (f'<TR><TD COLSPAN="{2 * columns}" ALIGN="LEFT"><FONT POINT-SIZE="12"><B>{_escape(caption)}</B>'
            "</FONT></TD></TR>") if caption else ""
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
            + head + "".join(rows) + "</TABLE>>")


def _legend_entry(fill: str, border: str, text: str) -> str:
    swatch = (f'<TABLE BORDER="1" COLOR="{border}" CELLBORDER="0" CELLPADDING="0" CELLSPACING="0" STYLE="ROUNDED">'
              f'<TR><TD BGCOLOR="{fill}" WIDTH="20" HEIGHT="11"> </TD></TR></TABLE>')
    return f'<TD ALIGN="RIGHT">{swatch}</TD><TD ALIGN="LEFT">{_escape(text)}  </TD>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["FONT", "Style", "CATEGORIES", "GRADIENT", "node_attrs", "cluster_attrs",
           "legend_label", "GRAPH_ATTRS", "COLLAPSED_GRAPH_ATTRS", "NODE_ATTRS", "EDGE_ATTRS", "GRADIENT_EDGE"]
