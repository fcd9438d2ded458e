"""Pictures of the chart's Grafana dashboards without Grafana: every panel's PromQL run
against a Prometheus over HTTP and drawn with matplotlib on the dashboard's own grid. It is
a rendering of the queries, not a Grafana screenshot (Grafana is not packaged here).

    python -m llmcache.bench.dashboards --prometheus http://127.0.0.1:9090 \\
        --var namespace=apps --minutes 10 --out docs/img charts/llmcache/dashboards/*.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
Series = tuple[dict[str, str], list[tuple[float, float]]]
RangeQuery = Callable[[str, float, float, float], list[Obj]]

NOTE = (
    "Rendering of the dashboard's PromQL queries against a real Prometheus "
    "(matplotlib, not a Grafana screenshot)"
)
BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a")


@dataclass(frozen=True)
class Window:
    """The time range and Grafana's built-in interval variables for it."""

    start: float
    end: float
    step: float = 2.0
    rate_interval: str = "10s"

    @property
    def builtins(self) -> dict[str, str]:
        return {
            "__rate_interval": self.rate_interval,
            # Grafana's $__interval is the step, at least the data source's minimum (a
            # few scrapes: an increase() needs two samples in its window).
            "__interval": f"{max(self.step, 5.0):g}s",
            "__range": f"{max(1, math.ceil(self.end - self.start))}s",
        }


def panels(board: Obj) -> Iterator[Obj]:
    """Every panel, those of collapsed rows included."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's template variables (``$name``, ``${name}``) replaced by ``values``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def legend(fmt: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "")
    return text.strip() or ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


def prometheus_range(url: str) -> RangeQuery:
    """``query_range`` over HTTP: (expr, start, end, step) -> Prometheus's result list."""

    def run(expr: str, start: float, end: float, step: float) -> list[Obj]:
        query = urllib.parse.urlencode(
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}s"}
        )
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=30) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as err:  # Prometheus explains a 400 in the body
            raise RuntimeError(f"{expr!r}: {err.read().decode(errors='replace')}") from None
        if doc.get("status") != "success":
            raise RuntimeError(f"{expr!r}: {doc}")
        result: list[Obj] = doc["data"]["result"]
        return result

    return run


def fetch(
    panel: Obj, values: dict[str, str], window: Window, query: RangeQuery
) -> list[tuple[str, Series]]:
    """(legend, (labels, [(t, v)])) of every series of every target of ``panel``."""
    out = []
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], {**values, **window.builtins})
        for item in query(expr, window.start, window.end, window.step):
            points = [(float(t), float(v)) for t, v in item["values"]]
            labels = item["metric"]
            out.append((legend(target.get("legendFormat", ""), labels), (labels, points)))
    return out


def fmt_value(value: float, unit: str | None) -> str:
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value:.1%}"
    if unit == "currencyUSD":
        return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    if unit in ("bytes", "Bps"):
        suffix = "/s" if unit == "Bps" else ""
        for size in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024 or size == "GiB":
                return f"{value:.3g} {size}{suffix}"
            value /= 1024
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{prefix}"
    return f"{value:.4g}"


def _last(points: list[tuple[float, float]]) -> float:
    for _, value in reversed(points):
        if not math.isnan(value):
            return value
    return math.nan


def draw(
    board: Obj, values: dict[str, str], window: Window, query: RangeQuery, path: Path
) -> list[str]:
    """Draw ``board`` into ``path`` (PNG); returns the titles of the panels without data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

    all_panels = list(panels(board))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in all_panels)
    header = 3.0  # grid units above the panels: title, variables, note
    unit_h = 0.3  # inches per grid row
    width = 18.0
    fig = plt.figure(figsize=(width, (rows + header) * unit_h), facecolor=BG)
    total = rows + header
    subtitle = "  ".join(f"{k} = {v}" for k, v in sorted(values.items()))
    span = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(window.start))
    fig.text(0.006, 1 - 1.2 / total, board["title"], color=TEXT, fontsize=16, weight="bold")
    fig.text(
        0.006,
        1 - 2.3 / total,
        f"{NOTE}.  Variables: {subtitle}.  From {span} UTC, {window.end - window.start:.0f} s.",
        color="#8e8e8e",
        fontsize=9,
    )
    unit_y = 1 / total  # one grid row, in figure coordinates
    unit_x = 0.3 / width  # 0.3 inch, in figure coordinates
    empty = []
    for panel in all_panels:
        grid = panel["gridPos"]
        left, top = grid["x"] / 24, 1 - (header + grid["y"]) * unit_y
        cell_w, cell_h = grid["w"] / 24, grid["h"] * unit_y
        if panel["type"] == "row":
            fig.text(
                left + 0.004,
                top - cell_h / 2,
                panel["title"],
                color=TEXT,
                fontsize=12,
                weight="bold",
                va="center",
            )
            continue
        fig.patches.append(
            Rectangle(
                (left + 0.002, top - cell_h + 0.1 * unit_y),
                cell_w - 0.004,
                cell_h - 0.2 * unit_y,
                transform=fig.transFigure,
                facecolor=PANEL,
                edgecolor=GRID,
                linewidth=0.8,
                zorder=-1,
            )
        )
        fig.text(
            left + 0.007,
            top - 0.75 * unit_y,
            panel["title"],
            color=TEXT,
            fontsize=9.5,
            weight="bold",
            va="center",
        )
        series = fetch(panel, values, window, query)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        plain = panel["type"] == "stat" or not series
        inset_l = 0.3 * unit_x if plain else 3.2 * unit_x
        inset_b = 0.3 * unit_y if plain else 1.3 * unit_y
        rect = (
            left + inset_l,
            top - cell_h + inset_b,
            cell_w - inset_l - 0.6 * unit_x,
            cell_h - inset_b - 1.5 * unit_y,
        )
        ax: Axes = fig.add_axes(rect, facecolor=PANEL)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors="#8e8e8e", labelsize=7)
        if not series:
            empty.append(panel["title"])
            ax.text(
                0.5,
                0.5,
                "No data",
                color="#8e8e8e",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_xticks([])
            ax.set_yticks([])
        elif panel["type"] == "stat":
            _stat(ax, series, unit)
        elif panel["type"] == "bargauge":
            _bars(ax, series, unit)
        elif panel["type"] == "heatmap":
            _heatmap(ax, series, window)
        else:
            _lines(ax, series, unit, window)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, facecolor=BG)
    plt.close(fig)
    return empty


def _stat(ax: Any, series: list[tuple[str, Series]], unit: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    n = len(series)
    for i, (name, (_, points)) in enumerate(series):
        x = (i + 0.5) / n
        colour = COLOURS[i % len(COLOURS)]
        ax.text(
            x,
            0.5,
            fmt_value(_last(points), unit),
            color=colour,
            fontsize=18 if n < 3 else 13,
            ha="center",
            va="center",
            weight="bold",
            transform=ax.transAxes,
        )
        if n > 1:
            ax.text(x, 0.15, name, color=TEXT, fontsize=8, ha="center", transform=ax.transAxes)


def _bars(ax: Any, series: list[tuple[str, Series]], unit: str | None) -> None:
    lasts = [_last(points) for _, (_, points) in series]
    ax.barh(range(len(lasts)), lasts, color=COLOURS[0], height=0.6)
    ax.invert_yaxis()
    ax.set_yticks([])
    for i, (name, _) in enumerate(series):
        ax.text(0, i, f"  {name}", color=BG, fontsize=9, va="center", weight="bold")
        ax.text(lasts[i], i, " " + fmt_value(lasts[i], unit), color=TEXT, fontsize=9, va="center")
    ax.xaxis.set_major_formatter(lambda v, _: fmt_value(v, unit))


def _times(points: list[tuple[float, float]], window: Window) -> list[float]:
    return [t - window.end for t, _ in points]


def _lines(ax: Any, series: list[tuple[str, Series]], unit: str | None, window: Window) -> None:
    for i, (name, (_, points)) in enumerate(series):
        ax.plot(
            _times(points, window),
            [v for _, v in points],
            label=name,
            color=COLOURS[i % len(COLOURS)],
            linewidth=1.4,
        )
    ax.set_xlim(window.start - window.end, 0)
    ax.grid(True, color=GRID, linewidth=0.5)
    ax.yaxis.set_major_formatter(lambda v, _: fmt_value(v, unit))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}s")
    ax.legend(fontsize=7, loc="upper left", facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT)


def _heatmap(ax: Any, series: list[tuple[str, Series]], window: Window) -> None:
    """Prometheus histogram buckets as Grafana's heatmap shows them: counts per bucket over
    time (the cumulative ``le`` buckets taken apart)."""
    import numpy as np

    def bound(labels: dict[str, str]) -> float:
        return float(labels.get("le", "inf").replace("+Inf", "inf"))

    ordered = sorted((bound(labels), points) for _, (labels, points) in series)
    times = sorted({t for _, points in ordered for t, _ in points})
    column = {t: i for i, t in enumerate(times)}
    grid = np.zeros((len(ordered), len(times)))
    for row, (_, points) in enumerate(ordered):
        for t, value in points:
            grid[row, column[t]] = 0.0 if math.isnan(value) else value
    counts = np.diff(grid, axis=0, prepend=0.0).clip(min=0.0)
    ax.imshow(
        counts,
        aspect="auto",
        origin="lower",
        cmap="inferno",
        interpolation="nearest",
        extent=(times[0] - window.end, times[-1] - window.end, 0, len(ordered)),
    )
    ticks = range(0, len(ordered), max(1, len(ordered) // 6))
    ax.set_yticks([i + 0.5 for i in ticks], [f"{ordered[i][0]:g}" for i in ticks])
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboards", nargs="+", type=Path, help="Grafana dashboard JSON files")
    parser.add_argument("--prometheus", required=True, help="base URL of the Prometheus")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template variable value (regex-ready for multi-value ones)",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="time range ending now")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory of the PNGs")
    args = parser.parse_args(argv)
    values = dict(v.split("=", 1) for v in args.var)
    end = time.time()
    step = max(2.0, args.minutes * 60 / 300)
    window = Window(end - args.minutes * 60, end, step, f"{max(10, int(4 * step))}s")
    for path in args.dashboards:
        out = args.out / f"{path.stem}.png"
        board = json.loads(path.read_text())
        empty = draw(board, values, window, prometheus_range(args.prometheus), out)
        print(f"{out}: panels without data: {', '.join(empty) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
