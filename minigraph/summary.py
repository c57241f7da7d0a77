"""`mg.summary`: parameters and multiply-adds per name scope, like Table 1 of the GoogLeNet paper.

    s = mg.summary(net.probs)          # one row per top-level scope
    print(s)                           # an aligned table
    s.total_params, s.total_macs
    json.dumps(s.to_dict())

What is counted, per row (a group of nodes sharing a scope prefix, see `minigraph.scopes`):
- params: the elements of every variable created in the group (weights and biases);
- macs: the multiply-accumulates of one example, the sum of `op.cost(node).macs` over the
  group's nodes: output elements x C_in x KH x KW for a convolution, C_in per output element
  for a 1x1 conv, in x out for a matmul; pooling, activations and bias adds count 0.
- unshared_params: the parameters the group would need without weight sharing, the seed's
  "no parameter sharing" figure: a convolution becomes a locally connected layer with its own
  filter weights and bias at every output position (`op.cost(node).unshared_params`, e.g.
  32x32x3 -> 20 filters 8x8x3, stride 2, padding 1 -> 14x14x20: 756,560 instead of 3,860);
  variables that no weight-sharing op reads (a dense layer's) count as they are.
Only forward nodes are counted: gradient nodes built by `mg.gradients` are left out.
"""
from __future__ import annotations

import html
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import numpy as np

from .graph import Graph, Node
from .op import Cost, Placeholder, Variable
from .scopes import group_by_scope, group_kind, is_gradient, is_structural, output_node, target_nodes


class Row(NamedTuple):
    """One line of a summary: a scope (or a top-level node) and what it costs."""

    name: str
    kind: str
    output_shape: Tuple[Optional[int], ...]
    params: int
    macs: int
    unshared_params: int


class Summary:
    """The rows of `mg.summary` in graph order, with totals.

    `str()` gives an aligned text table (`table(unshared=True)` adds the parameters without
    weight sharing), `to_markdown()` a Markdown table and `to_html()` an HTML table; Jupyter
    shows the HTML one (`_repr_html_`), IPython's terminal the text.
    """

    def __init__(self, rows: Sequence[Row]):
        self.rows: List[Row] = list(rows)
        self.total_params = sum(r.params for r in self.rows)
        self.total_macs = sum(r.macs for r in self.rows)
        self.total_unshared_params = sum(r.unshared_params for r in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, name: str) -> Row:
        """The row called `name` (e.g. s["inception_3a"])."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def to_dict(self) -> dict:
        """JSON-ready: {"rows": [{"name", "kind", "output_shape", "params", "macs", "unshared_params"}],
        "total_params", "total_macs", "total_unshared_params"}."""
        return {
            "rows": [{"name": r.name, "kind": r.kind, "output_shape": list(r.output_shape),
                      "params": r.params, "macs": r.macs, "unshared_params": r.unshared_params}
                     for r in self.rows],
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "total_unshared_params": self.total_unshared_params,
        }

    def cells(self, unshared: bool = False) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]], Tuple[str, ...]]:
        """(heading, body rows, total row) as the strings every table form prints: name, kind,
        output shape, params, and with `unshared` a column "params unshared" (the parameters
        without weight sharing), then MACs."""
        head = ("name", "kind", "output (C x H x W)", "params") + (("params unshared",) if unshared else ()) + ("MACs",)

        def numbers(params, unshared_params, macs):
            return (f"{params:,}",) + ((f"{unshared_params:,}",) if unshared else ()) + (f"{macs:,}",)

        body = [(r.name, r.kind, format_shape(r.output_shape)) + numbers(r.params, r.unshared_params, r.macs)
                for r in self.rows]
        foot = ("total", "", "") + numbers(self.total_params, self.total_unshared_params, self.total_macs)
        return head, body, foot

    def table(self, unshared: bool = False) -> str:
        """An aligned text table (see `cells`)."""
        head, body, foot = self.cells(unshared)
        widths = [max(len(line[i]) for line in [head, foot, *body]) for i in range(len(head))]

        def fmt_line(line):
            left = [line[i].ljust(widths[i]) for i in range(3)]
            right = [line[i].rjust(widths[i]) for i in range(3, len(line))]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(fmt_line(head))
        return "\n".join([fmt_line(head), rule, *map(fmt_line, body), rule, fmt_line(foot)])

    def __str__(self) -> str:
        return self.table()

    def to_markdown(self, unshared: bool = False) -> str:
        """A Markdown table (numbers right-aligned), the total as its last row in bold; cell
        text is HTML-escaped and '|' quoted, so no name can break the table."""
        head, body, foot = self.cells(unshared)

        def line(cells):
            return "| " + " | ".join(html.escape(c, quote=False).replace("|", "\\|") for c in cells) + " |"
        rule = "| " + " | ".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + " |"
        total = [f"**{c}**" if c else "" for c in foot]
        return "\n".join([line(head), rule, *map(line, body), line(total)])

    def to_html(self, unshared: bool = False) -> str:
        """An HTML table (names escaped, numbers right-aligned), the total in its footer."""
        head, body, foot = self.cells(unshared)
        right = ' style="text-align: right"'

        def row(cells, tag):
            return "<tr>" + "".join(f"<{tag}{right if i >= 3 else ''}>{html.escape(c)}</{tag}>"
                                    for i, c in enumerate(cells)) + "</tr>"
        return ("<table>\n<thead>" + row(head, "th") + "</thead>\n<tbody>\n"
                + "\n".join(row(b, "td") for b in body) + "\n</tbody>\n<tfoot>" + row(foot, "th")
                + "</tfoot>\n</table>")

    def _repr_html_(self) -> str:  # Jupyter
        return self.to_html()

    def _repr_markdown_(self) -> str:  # front-ends that prefer Markdown
        return self.to_markdown()

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython's text display
        printer.text(str(self))

    def __repr__(self) -> str:
        return f"<Summary {len(self.rows)} rows, {self.total_params:,} params, {self.total_macs:,} MACs>"


def format_shape(shape: Sequence[Optional[int]]) -> str:
    """A shape without its batch dimension, as 'C x H x W' ('1000' for (None, 1000), 'scalar' for ())."""
    if len(shape) == 0:
        return "scalar"
    dims = shape[1:] if len(shape) > 1 else shape
    return " x ".join("?" if d is None else str(d) for d in dims)


def summary(outputs: Union[Node, Sequence[Node], Graph], depth: int = 1) -> Summary:
    """Aggregate the forward graph behind `outputs` by name scope, `depth` scopes deep.

    `outputs` is a node, a list of nodes (their ancestors are summarised) or a whole graph.
    One row per group in graph order: name, kind (see `minigraph.scopes.group_kind`),
    output shape, params (variable elements) and MACs per example. Constants and defaulted
    switches (e.g. a `training` flag) get no row.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    nodes = _forward_nodes(outputs)
    costs = {n.index: n.op.cost(n) for n in nodes}
    shared, sharers = _weight_sharing(nodes, costs)
    rows = []
    for key, group in group_by_scope(nodes, depth).items():
        if all(is_structural(n) for n in group):
            continue
        variables = [n for n in group if isinstance(n.op, Variable)]
        params = sum(_elements(v) for v in variables)
        macs = sum(int(costs[n.index].macs) for n in group)
        unshared = (sum(_elements(v) for v in variables if v.index not in shared)
                    + sum(int(costs[n.index].unshared_params) for n in group if n.index in sharers))
        out = output_node(group)
        kind = "placeholder" if isinstance(out.op, Placeholder) else group_kind(group)
        rows.append(Row(key, kind, tuple(out.shape), params, macs, unshared))
    return Summary(rows)


def _forward_nodes(outputs) -> List[Node]:
    return [n for n in target_nodes(outputs, "summary") if not is_gradient(n)]


def _elements(node: Node) -> int:
    return int(np.prod(node.shape, dtype=np.int64))


def _weight_sharing(nodes: Sequence[Node], costs: Dict[int, Cost]) -> Tuple[Set[int], Set[int]]:
    """(variables, sharers): the indices of the variables read by a node with an
    `unshared_params` figure, and of those nodes. Without sharing, each sharer's figure
    replaces the count of the variables it reads (a filter two convolutions share counts
    once per convolution); a sharer that reads no variable holds no parameters to count."""
    variables: Set[int] = set()
    sharers: Set[int] = set()
    for n in nodes:
        if costs[n.index].unshared_params is None:
            continue
        read = {x.index for x in n.inputs if isinstance(x.op, Variable)}
        if read:
            variables |= read
            sharers.add(n.index)
    return variables, sharers


__all__ = ["summary", "Summary", "Row", "format_shape"]
