"""A chart per report, built with plotly's figure objects and drawn in the admin by the
plotly.js that ships with the package. Each takes the report's table as the API gives it
(columns, rows of JSON values) and returns the figure as JSON-ready data."""

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

Table = tuple[Sequence[str], Sequence[Sequence[Any]]]
LAYOUT = {
    "margin": {"l": 50, "r": 50, "t": 30, "b": 40},
    "height": 320,
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}


def _column(table: Table, name: str) -> list:
    columns, rows = table
    index = list(columns).index(name)
    return [row[index] for row in rows]


def _number(value: Any) -> float:
    return float(value) if value not in (None, "") else 0.0


def _pivot(table: Table, key: str, value: str, bucket: str = "bucket") -> tuple[list, dict]:
    """Rows of (bucket, key, value) as x values and a series per key."""
    buckets = sorted(set(_column(table, bucket)))
    series: dict[str, dict] = defaultdict(dict)
    for b, k, v in zip(
        _column(table, bucket), _column(table, key), _column(table, value), strict=True
    ):
        series[str(k)][b] = series[str(k)].get(b, 0) + _number(v)
    return buckets, {k: [by_bucket.get(b, 0) for b in buckets] for k, by_bucket in series.items()}


def _lines(table: Table, names: Sequence[str], *, secondary: Sequence[str] = ()) -> go.Figure:
    figure = go.Figure()
    x = _column(table, table[0][0])
    for name in names:
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[_number(v) for v in _column(table, name)],
                name=name,
                mode="lines+markers",
                yaxis="y2" if name in secondary else "y",
            )
        )
    if secondary:
        figure.update_layout(yaxis2={"overlaying": "y", "side": "right", "rangemode": "tozero"})
    return figure


def _bars(x: list, series: dict[str, list], *, stacked: bool = False) -> go.Figure:
    figure = go.Figure([go.Bar(x=x, y=y, name=name) for name, y in series.items()])
    figure.update_layout(barmode="stack" if stacked else "group")
    return figure


def _growth(table: Table) -> go.Figure:
    return _lines(
        table, ["new_members", "active_members", "total_members"], secondary=["total_members"]
    )


def _distribution(table: Table) -> go.Figure:
    columns, _ = table
    x = _column(table, "bucket")
    return go.Figure(
        [
            go.Scatter(x=x, y=_column(table, tier), name=tier, stackgroup="tiers", mode="lines")
            for tier in columns[1:]
        ]
    )


def _movements(table: Table) -> go.Figure:
    x, series = _pivot(table, "move", "members")
    return _bars(x, series)


def _repurchase(table: Table) -> go.Figure:
    figure = _bars(
        _column(table, "bucket"),
        {name: _column(table, name) for name in ("buyers", "repeat_buyers")},
    )
    figure.add_trace(
        go.Scatter(
            x=_column(table, "bucket"),
            y=[_number(v) for v in _column(table, "repurchase_rate")],
            name="repurchase_rate",
            yaxis="y2",
            mode="lines+markers",
        )
    )
    figure.update_layout(yaxis2={"overlaying": "y", "side": "right", "tickformat": ".0%"})
    return figure


def _spend(table: Table) -> go.Figure:
    x, spend = _pivot(table, "tier", "spend")
    _, aov = _pivot(table, "tier", "aov")
    figure = _bars(x, {f"spend {tier}": values for tier, values in spend.items()})
    for tier, values in aov.items():
        figure.add_trace(
            go.Scatter(x=x, y=values, name=f"aov {tier}", yaxis="y2", mode="lines+markers")
        )
    figure.update_layout(yaxis2={"overlaying": "y", "side": "right", "rangemode": "tozero"})
    return figure


def _cohorts(table: Table) -> go.Figure:
    columns, rows = table
    months = [c for c in columns if c.startswith("month_")]
    return go.Figure(
        go.Heatmap(
            x=months,
            y=_column(table, "cohort"),
            z=[[_number(v) for v in row[2:]] for row in rows],
            zmin=0,
            zmax=1,
            colorscale="Blues",
        )
    )


def _by_key(key: str, values: Sequence[str], *, stacked: bool = False) -> Callable:
    def chart(table: Table) -> go.Figure:
        x = sorted(set(_column(table, "bucket")))
        series = {}
        for value in values:
            _, per_key = _pivot(table, key, value)
            series[value] = [sum(points) for points in zip(*per_key.values(), strict=True)] or [
                0
            ] * len(x)
        return _bars(x, series, stacked=stacked)

    return chart


def _points(table: Table) -> go.Figure:
    figure = _bars(
        _column(table, "bucket"),
        {name: _column(table, name) for name in ("issued", "redeemed", "expired", "reversed")},
    )
    figure.add_trace(
        go.Scatter(
            x=_column(table, "bucket"), y=_column(table, "closing"), name="closing", mode="lines"
        )
    )
    return figure


def _aging(table: Table) -> go.Figure:
    return go.Figure(
        go.Bar(x=_column(table, "expires_in"), y=_column(table, "points"), name="points")
    )


def _rules(table: Table) -> go.Figure:
    x, series = _pivot(table, "rule", "firings")
    return _bars(x, series, stacked=True)


CHARTS: dict[str, Callable[[Table], go.Figure]] = {
    "member-growth": _growth,
    "tier-distribution": _distribution,
    "tier-movements": _movements,
    "repurchase": _repurchase,
    "spend-by-tier": _spend,
    "cohorts": _cohorts,
    "coupons": _by_key("template", ["issued", "redeemed", "expired", "voided"]),
    "points": _points,
    "points-aging": _aging,
    "messages": _by_key(
        "channel", ["queued", "sent", "delivered", "failed", "suppressed"], stacked=True
    ),
    "rules": _rules,
}


def chart_data(name: str, table: Table) -> dict | None:
    """The report's figure as plotly.js takes it ({"data", "layout"}), or None for a
    report without a chart or without rows."""
    build = CHARTS.get(name)
    if build is None or not table[1]:
        return None
    figure = build(table)
    figure.update_layout(**LAYOUT)
    return json.loads(figure.to_json())
