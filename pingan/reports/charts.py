"""PNG charts of a compliance report (matplotlib, Agg): a heat map of the on-time rate per unit
and duty, and the escalated tasks per responsible leader by level.

Chinese labels need a CJK font: the first one matplotlib's font manager knows (Debian's
fonts-noto-cjk gives "Noto Sans CJK SC"). Without one a warning says so and the charts use
unit codes, duty keys and English titles, which any font can draw, rather than empty boxes.
Figures are made with ``matplotlib.figure.Figure`` (no pyplot state), so threads may draw at once.
"""

from __future__ import annotations

import functools
import math
import os
import uuid
import warnings
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg backend, without touching pyplot's
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from pingan.core.i18n import MESSAGES, pick
from pingan.reports.compute import Report

PREFERRED = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Noto Sans CJK JP", "Noto Serif CJK SC")
DPI = 100
RATE_COLOURS = LinearSegmentedColormap.from_list("rate", ["#c0392b", "#f1c40f", "#27ae60"])
LEVEL_COLOURS = ("#f4b183", "#ed7d31", "#c00000", "#7f0000", "#400000")


class NoCJKFontWarning(UserWarning):
    """No font with Chinese glyphs: the charts fall back to codes and English."""


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed CJK font, or None."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in PREFERRED:
        if name in names:
            return name
    fallback = sorted(n for n in names if "CJK" in n or "Han Sans" in n or "WenQuanYi" in n)
    return fallback[0] if fallback else None


def _text(name: str, cjk: bool, /, **values) -> str:
    from pingan.core.i18n import locale

    pair = MESSAGES[f"rpt.{name}"]
    lang = locale() if cjk else "en"
    return pair.get(lang, pair["zh-CN"]).format(**values)


def _fonts(cjk: bool) -> dict:
    family = [cjk_font(), "DejaVu Sans"] if cjk else ["DejaVu Sans"]
    return {"font.family": family, "axes.unicode_minus": False}


def _cjk() -> bool:
    if cjk_font() is not None:
        return True
    warnings.warn("no CJK font found (install fonts-noto-cjk): charts use unit codes, duty keys and English",
                  NoCJKFontWarning, stacklevel=3)
    return False


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _empty(fig: Figure, title: str, message: str) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=ax.transAxes)


def heatmap(report: Report, path: Path) -> Path:
    """Units (rows) × duties (columns), coloured by on-time rate, each cell "on time/counted"."""
    cjk = _cjk()
    units = [u for u in report.by_unit if u.figures.total]
    duties = report.by_duty
    with matplotlib.rc_context(_fonts(cjk)):
        width = min(max(6.0, 2.5 + 0.9 * len(duties)), 40.0)
        height = min(max(3.0, 1.5 + 0.4 * len(units)), 80.0)
        fig = Figure(figsize=(width, height), layout="constrained")
        title = _text("chart.heatmap", cjk, key=report.period.key)
        if not units or not duties:
            _empty(fig, title, _text("chart.no_data", cjk))
            return _save(fig, path)
        grid, notes = [], []
        for u in units:
            line, marks = [], []
            for d in duties:
                f = report.matrix.get((u.key, d.key))
                rate = f.rate if f is not None else None
                line.append(math.nan if rate is None else rate)
                base = (f.due - f["waived"]) if f is not None else 0
                marks.append("" if f is None else (f"{f['on_time']}/{base}" if base else "—"))
            grid.append(line)
            notes.append(marks)
        ax = fig.add_subplot()
        cmap = RATE_COLOURS.with_extremes(bad="#d9d9d9")
        image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(duties)))
        ax.set_xticklabels([pick(d.label, d.info.get("name_en") or None) if cjk else d.key for d in duties],
                           rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(units)))
        ax.set_yticklabels([u.label if cjk else u.key for u in units], fontsize=8)
        if len(units) * len(duties) <= 2500:
            for i, marks in enumerate(notes):
                for j, mark in enumerate(marks):
                    if mark:
                        ax.text(j, i, mark, ha="center", va="center", fontsize=7, color="black")
        ax.set_title(title)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        return _save(fig, path)


def escalation_bars(report: Report, path: Path) -> Path:
    """Per responsible leader, the tasks of the units they answer for that reached each level."""
    cjk = _cjk()
    rows = [r for r in report.by_leader if r.figures.total]
    with matplotlib.rc_context(_fonts(cjk)):
        height = min(max(3.0, 1.5 + 0.45 * len(rows)), 60.0)
        fig = Figure(figsize=(9.0, height), layout="constrained")
        title = _text("chart.escalations", cjk, key=report.period.key)
        if not rows:
            _empty(fig, title, _text("chart.no_data", cjk))
            return _save(fig, path)
        ax = fig.add_subplot()
        names = [(r.label or _text("no_leader", cjk)) if cjk else (r.key or "-") for r in rows]
        positions = list(range(len(rows)))
        band = 0.8 / max(len(report.levels), 1)
        for i, level in enumerate(report.levels):
            values = [r.figures.levels.get(level, 0) for r in rows]
            offsets = [p - 0.4 + band * (i + 0.5) for p in positions]
            bars = ax.barh(offsets, values, height=band * 0.95, color=LEVEL_COLOURS[i % len(LEVEL_COLOURS)],
                           label=_text("chart.level", cjk, n=level))
            ax.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=7, padding=2)
        ax.set_yticks(positions)
        ax.set_yticklabels(names, fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel(_text("chart.tasks", cjk))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(x=0.08)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_title(title)
        return _save(fig, path)


def draw(report: Report, directory: Path) -> dict[str, Path]:
    """Both charts into ``directory``: {"heatmap": …, "escalations": …}."""
    directory = Path(directory)
    key = report.period.key
    return {
        "heatmap": heatmap(report, directory / f"heatmap-{key}.png"),
        "escalations": escalation_bars(report, directory / f"escalations-{key}.png"),
    }
