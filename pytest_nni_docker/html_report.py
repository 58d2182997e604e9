"""A self-contained HTML page that shows how an experiment's search went.

The page has two inline SVG charts, the final metric of each trial in submission
order with the best-so-far line, and the intermediate curves of every trial,
followed by a table of the trials. It loads nothing: no scripts, fonts,
images or style sheets from elsewhere, so it opens from a CI artifact as it is.
Hovering a point shows the trial's id, metric and parameters (SVG ``<title>``).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

from pytest_nni_docker.results import ExperimentResult, Trial

WIDTH = 720
HEIGHT = 300
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 40
# Pixels between the finite values and the plot's top and bottom edges, where
# +inf, -inf and NaN are drawn, so they never sit on a finite extreme.
EDGE_BAND = 14
# Colours of the intermediate curves, repeated when there are more trials.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STATUS_COLOURS = {"SUCCEEDED": "#2ca02c", "FAILED": "#d62728", "USER_CANCELED": "#7f7f7f", "EARLY_STOPPED": "#ff7f0e"}
BEST_COLOUR = "#d62728"


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Return round tick values (1, 2 or 5 times a power of ten apart) that cover [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw_step = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


@dataclass
class _Axes:
    """The mapping from data coordinates to SVG pixels of one chart."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float

    @classmethod
    def around(cls, xs: list[float], ys: list[float]) -> _Axes:
        finite = [y for y in ys if math.isfinite(y)] or [0.0, 1.0]
        y_low, y_high = min(finite), max(finite)
        if y_low == y_high:
            pad = abs(y_low) * 0.1 or 1.0
            y_low, y_high = y_low - pad, y_high + pad
        ticks = nice_ticks(y_low, y_high)
        y_low, y_high = min(ticks[0], y_low), max(ticks[-1], y_high)
        x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_low == x_high:
            x_low, x_high = x_low - 1, x_high + 1
        return cls(x_low, x_high, y_low, y_high)

    def x(self, value: float) -> float:
        span = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        return MARGIN_LEFT + (value - self.x_low) / (self.x_high - self.x_low) * span

    def y(self, value: float) -> float:
        """Return the pixel row of ``value``; +inf maps to the top edge, -inf and NaN to the bottom."""
        top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
        if math.isnan(value) or value == -math.inf:
            return bottom
        if value == math.inf:
            return top
        inner_top, inner_bottom = top + EDGE_BAND, bottom - EDGE_BAND
        return inner_bottom - (value - self.y_low) / (self.y_high - self.y_low) * (inner_bottom - inner_top)

    def frame(self, x_label: str, y_label: str, integer_x: bool, edges: bool = False) -> list[str]:
        """Return the SVG elements of the axes, grid lines, tick labels and axis titles.

        With ``edges``, the top and bottom edges are labelled as the rows of
        +inf and of -inf and NaN.
        """
        left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
        top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
        parts = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" class="plot"/>']
        if edges:
            parts.append(f'<text x="{left - 6}" y="{top + 4}" class="tick edge" text-anchor="end">+inf</text>')
            parts.append(f'<text x="{left - 6}" y="{bottom + 4}" class="tick edge" text-anchor="end">-inf, NaN</text>')
        for tick in nice_ticks(self.y_low, self.y_high):
            y = self.y(tick)
            parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_text(_number(tick))}</text>')
        x_ticks = nice_ticks(self.x_low, self.x_high, 8)
        if integer_x:
            x_ticks = sorted({int(round(t)) for t in x_ticks if self.x_low <= round(t) <= self.x_high}) or [int(self.x_low)]
        for tick in x_ticks:
            x = self.x(tick)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" class="axis"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" class="tick" text-anchor="middle">{_text(_number(tick))}</text>')
        parts.append(f'<text x="{(left + right) / 2:.1f}" y="{HEIGHT - 6}" class="label" text-anchor="middle">{_text(x_label)}</text>')
        parts.append(f'<text x="14" y="{(top + bottom) / 2:.1f}" class="label" text-anchor="middle" '
                     f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})">{_text(y_label)}</text>')
        return parts


def _tooltip(trial: Trial, value: float | None, step: int | None = None) -> str:
    where = f", step {step}" if step is not None else ""
    parameters = json.dumps(trial.parameters, sort_keys=True, default=str)
    return _text(f"trial {trial.id} ({trial.status}){where}: {_number(value)}\n{parameters}")


def _svg(parts: list[str], title: str) -> str:
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'role="img" aria-label="{_text(title)}">\n{body}\n</svg>')


def final_metric_chart(result: ExperimentResult) -> str:
    """Return an SVG chart of each trial's final metric in submission order, with the best so far."""
    trials = [t for t in result.trials if t.final_value is not None]
    if not trials:
        return '<p class="empty">No trial reported a final metric.</p>'

    order = {trial.id: index + 1 for index, trial in enumerate(result.trials)}
    xs = [float(order[t.id]) for t in trials]
    ys = [t.final_value for t in trials]
    axes = _Axes.around(xs, [y for y in ys if y is not None])
    parts = axes.frame("trial (submission order)", "final metric", integer_x=True,
                       edges=any(y is not None and not math.isfinite(y) for y in ys))

    # The best-so-far line: how the search improved over time, NaN skipped.
    best: float | None = None
    steps = []
    for x, y in zip(xs, ys):
        if y is None or math.isnan(y):
            continue
        if best is None or (y < best if result.optimize_mode == "minimize" else y > best):
            best = y
        steps.append((x, best))
    if steps:
        points = []
        for index, (x, y) in enumerate(steps):
            if index:
                points.append(f"{axes.x(x):.1f},{axes.y(steps[index - 1][1]):.1f}")
            points.append(f"{axes.x(x):.1f},{axes.y(y):.1f}")
        points.append(f"{axes.x(axes.x_high):.1f},{axes.y(steps[-1][1]):.1f}")
        parts.append(f'<polyline points="{" ".join(points)}" class="best-line"/>')

    best_trial = result.best_trial
    for trial, x, y in zip(trials, xs, ys):
        assert y is not None
        cx, cy = axes.x(x), axes.y(y)
        colour = STATUS_COLOURS.get(trial.status, "#1f77b4")
        tip = f"<title>{_tooltip(trial, y)}</title>"
        if math.isnan(y):
            parts.append(f'<g class="nan"><path d="M{cx - 5:.1f},{cy - 5:.1f} l10,10 m0,-10 l-10,10"/>{tip}</g>')
            parts.append(f'<text x="{cx:.1f}" y="{cy - 8:.1f}" class="marker-label" text-anchor="middle">NaN</text>')
        elif math.isinf(y):
            direction = -1 if y > 0 else 1
            stroke = f' stroke="{BEST_COLOUR}" stroke-width="2"' if best_trial is trial else ""
            parts.append(f'<path d="M{cx:.1f},{cy:.1f} l-6,{-6 * direction} h12 z" fill="{colour}"{stroke}>{tip}</path>')
            label_y = cy + 4 if y > 0 else cy
            # Labels go right of the marker, or left of it near the right edge.
            near_edge = cx > WIDTH - MARGIN_RIGHT - 40
            label_x, anchor = (cx - 9, "end") if near_edge else (cx + 9, "start")
            parts.append(f'<text x="{label_x:.1f}" y="{label_y:.1f}" class="marker-label" '
                         f'text-anchor="{anchor}">{_number(y)}</text>')
        else:
            radius = 6 if best_trial is trial else 4
            stroke = f' stroke="{BEST_COLOUR}" stroke-width="2.5"' if best_trial is trial else ""
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{colour}"{stroke}>{tip}</circle>')
    return _svg(parts, "final metric of each trial")


def intermediate_chart(result: ExperimentResult) -> str:
    """Return an SVG chart of every trial's intermediate metrics, the best trial's curve on top."""
    curves = [(t, t.intermediate_values) for t in result.trials if t.intermediate_metrics]
    if not curves:
        return '<p class="empty">No trial reported intermediate metrics.</p>'

    xs = [float(step) for _, values in curves for step in range(len(values))]
    ys = [v for _, values in curves for v in values if v is not None]
    axes = _Axes.around(xs, ys)
    parts = axes.frame("step", "intermediate metric", integer_x=True,
                       edges=any(v is None or not math.isfinite(v) for _, values in curves for v in values))

    best = result.best_trial
    ordered = sorted(enumerate(curves), key=lambda item: item[1][0] is best)
    for index, (trial, values) in ordered:
        colour = BEST_COLOUR if trial is best else PALETTE[index % len(PALETTE)]
        width = 3 if trial is best else 1.5
        # A NaN or non-numeric value breaks the line; the segments around it stay.
        segment: list[str] = []
        segments = [segment]
        for step, value in enumerate(values):
            if value is None or math.isnan(value):
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{axes.x(step):.1f},{axes.y(value):.1f}")
        for points in segments:
            if len(points) > 1:
                parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                             f'stroke-width="{width}" stroke-opacity="0.85"><title>{_tooltip(trial, values[-1])}</title></polyline>')
        for step, value in enumerate(values):
            if value is None or math.isnan(value):
                parts.append(f'<g class="nan"><path d="M{axes.x(step) - 3:.1f},{axes.y(math.nan) - 3:.1f} l6,6 m0,-6 l-6,6"/>'
                             f'<title>{_tooltip(trial, value, step)}</title></g>')
            else:
                parts.append(f'<circle cx="{axes.x(step):.1f}" cy="{axes.y(value):.1f}" r="2.5" fill="{colour}">'
                             f'<title>{_tooltip(trial, value, step)}</title></circle>')
    return _svg(parts, "intermediate metrics of each trial")


def _trial_rows(result: ExperimentResult) -> str:
    best = result.best_trial
    rows = []
    for trial in result.trials:
        parameters = json.dumps(trial.parameters, sort_keys=True, default=str)
        metric = trial.final_metric
        metric_text = json.dumps(metric, sort_keys=True) if isinstance(metric, dict) else _number(trial.final_value)
        notes = []
        if trial.parameters_mismatch is not None:
            record = json.dumps(trial.parameters_mismatch, sort_keys=True, default=str)
            notes.append(f"NNI's trial record had other parameters: {record}")
        if trial.parameters_source == "record":
            notes.append("parameters from the trial record (no metric to confirm them)")
        if trial.message:
            notes.append(trial.message)
        duration = f"{trial.duration:.1f} s" if trial.duration is not None else "-"
        colour = STATUS_COLOURS.get(trial.status, "#555")
        rows.append(
            f'<tr{" class=best" if trial is best else ""}><td><code>{_text(trial.id)}</code></td>'
            f'<td style="color:{colour}">{_text(trial.status)}</td><td class="num">{_text(metric_text)}</td>'
            f'<td class="num">{len(trial.intermediate_metrics)}</td><td class="num">{_text(duration)}</td>'
            f'<td><code>{_text(parameters)}</code></td><td>{_text("; ".join(notes))}</td></tr>'
        )
    return "\n".join(rows)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin-bottom: 4px; }
h2 { font-size: 16px; margin-top: 28px; }
.meta { color: #555; margin: 2px 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { color: #555; } dd { margin: 0; }
svg { background: #fff; }
.plot { fill: #fafafa; stroke: #999; }
.grid { stroke: #e3e3e3; }
.axis { stroke: #999; }
.tick { font-size: 11px; fill: #555; }
.edge { font-style: italic; }
.label { font-size: 12px; fill: #333; }
.marker-label { font-size: 10px; fill: #333; }
.best-line { fill: none; stroke: #d62728; stroke-width: 1.5; stroke-dasharray: 5 3; }
.nan path { stroke: #7f7f7f; stroke-width: 2; }
.legend span { margin-right: 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #fdecec; }
code { font-size: 12px; }
.empty { color: #777; }
"""


def render(result: ExperimentResult, test: str = "") -> str:
    """Return the whole HTML page for ``result``; ``test`` names the pytest test that ran it."""
    best = result.best_trial
    counts = ", ".join(f"{status} {number}" for status, number in sorted(result.counts.items())) or "no trials"
    duration = f"{result.duration:.1f} s" if result.duration is not None else "-"
    best_text = f"{_number(best.final_value)} (trial {best.id})" if best else "-"
    facts = [
        ("test", test or "-"),
        ("status", result.status + (f", ended by {result.end_reason}"
                                    if result.end_reason and result.end_reason != result.status.lower() else "")),
        ("NNI", f"{result.nni_version} ({result.mode} mode)"),
        ("trials by status", counts),
        ("best final metric", f"{best_text}, {result.optimize_mode}"),
        ("duration", duration),
    ]
    if result.errors:
        facts.append(("NNI errors", "; ".join(result.errors)))
    facts_html = "\n".join(f"<dt>{_text(name)}</dt><dd>{_text(value)}</dd>" for name, value in facts)
    search_space = json.dumps(result.search_space, indent=2, sort_keys=True)

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>NNI experiment {_text(result.id)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>NNI experiment {_text(result.id)}</h1>
<dl>
{facts_html}
</dl>
<h2>Final metric of each trial</h2>
<p class="legend"><span>● trial, coloured by status</span><span>ring: best trial</span>
<span>dashed line: best so far</span><span>× NaN (bottom edge)</span><span>▲▼ ±inf (edges)</span></p>
{final_metric_chart(result)}
<h2>Intermediate metrics</h2>
<p class="legend"><span>one line per trial</span><span>thick red: the best trial</span></p>
{intermediate_chart(result)}
<h2>Trials</h2>
<table>
<thead><tr><th>trial</th><th>status</th><th>final metric</th><th>intermediate</th><th>duration</th><th>parameters</th><th>notes</th></tr></thead>
<tbody>
{_trial_rows(result)}
</tbody>
</table>
<h2>Search space</h2>
<pre>{_text(search_space)}</pre>
</body>
</html>
"""


def write_report(result: ExperimentResult, path: str | Path, test: str = "") -> Path:
    """Write the HTML report of ``result`` to ``path``, creating its folder; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(result, test), encoding="utf-8")
    return target
