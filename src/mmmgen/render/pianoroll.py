"""Piano-roll pictures of scores: bar lines from the meters, one colour per track, drums below, chords above."""

from __future__ import annotations

import math
from pathlib import Path

from mmmgen.render.midi import as_score


def bar_ticks(score, end_tick: int | None = None) -> list[int]:
    """Ticks where bars start, from the time signatures (4/4 when none), past ``end_tick``.

    A meter change in the middle of a bar starts a new bar there. The last entry is the end of
    the last bar, so there is always one more entry than bars (and at least one bar).
    """
    tpq = int(score.tpq)
    if end_tick is None:
        ends = [t.notes.numpy() for t in score.tracks if len(t.notes)]
        end_tick = max((int((n["time"] + n["duration"]).max()) for n in ends), default=0)
    changes: dict[int, tuple[int, int]] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        changes[int(ts.time)] = (int(ts.numerator), int(ts.denominator))
    changes.setdefault(0, changes[min(changes)] if changes else (4, 4))
    times = sorted(changes)
    ticks, i, t = [0], 0, 0
    while True:
        while i + 1 < len(times) and times[i + 1] <= t:
            i += 1
        num, den = changes[times[i]]
        length = max(num * tpq * 4 // den, 1)
        nxt = t + length
        if i + 1 < len(times) and times[i + 1] < nxt:
            nxt = times[i + 1]
        t = nxt
        ticks.append(t)
        if t >= end_tick:
            return ticks


def _tempo_text(score) -> str:
    if not len(score.tempos):
        return "120 BPM"
    qpm = {round(float(t.qpm), 1) for t in score.tempos}
    return f"{min(qpm):g} BPM" if len(qpm) == 1 else f"{min(qpm):g}-{max(qpm):g} BPM"


def _draw_chords(ax, score, to_bar) -> bool:
    """The score's chord markers as labels in a row just above ``ax``, a tick at each chord's start
    (True when there were some)."""
    from mmmgen.text.chord_track import marker_chords

    spans = [s for s in marker_chords(score) if not s.chord.is_none]
    if not spans:
        return False
    tpq = int(score.tpq)
    xs = to_bar([float(s.start) * tpq for s in spans])
    crowded = len(spans) > 24  # a long song: the smallest type
    for x, span in zip(xs, spans, strict=True):
        label = span.chord.label.replace(":maj", "").replace(":min", "m").replace(":", "")  # A:min -> Am, G:7 -> G7
        ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(1, 2), textcoords="offset points",
                    fontsize=5 if crowded else 7, color="#333366", ha="left", va="bottom", annotation_clip=False)
        ax.axvline(x, color="#9999cc", linewidth=0.6, ymin=0.97, ymax=1.0)
    return True


def plot_pianoroll(
    score,
    path: str | Path,
    title: str | None = None,
    size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
) -> Path:
    """A piano-roll picture of a score (or ``Piece`` or MMM text), ``size`` pixels exactly.

    Time runs in bars (bar lines from the score's meters), pitch upwards; each track has its own
    colour (one ``PolyCollection`` of note rectangles per track) and a legend entry with its GM
    instrument name. Drum hits are crosses in a band of their own below, one row per drum sound.
    The score's chords (its chord markers, as a piece with a chord track has them) are written in
    a row above the notes, each where it starts.
    """
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from mmmgen.render.gm import drum_name, instrument_name

    score = as_score(score)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tracks = [(i, t, t.notes.numpy()) for i, t in enumerate(score.tracks)]
    end_tick = max((int((n["time"] + n["duration"]).max()) for _, _, n in tracks if len(n["time"])), default=0)
    bars = np.asarray(bar_ticks(score, end_tick), np.float64)
    n_bars = len(bars) - 1

    def to_bar(ticks):
        return np.interp(ticks, bars, np.arange(len(bars), dtype=np.float64))

    pitched = [(i, t, n) for i, t, n in tracks if not t.is_drum and len(n["time"])]
    drums = [(i, t, n) for i, t, n in tracks if t.is_drum and len(n["time"])]
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    left, right, bottom, top = 0.085, 0.80, 0.10, 0.90
    if pitched and drums:
        grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.06, left=left, right=right, bottom=bottom, top=top)
        ax_notes = fig.add_subplot(grid[0])
        ax_drums = fig.add_subplot(grid[1], sharex=ax_notes)
    else:
        fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
        ax = fig.add_subplot(1, 1, 1)
        ax_notes, ax_drums = (ax, None) if pitched or not drums else (None, ax)
    axes = [a for a in (ax_notes, ax_drums) if a is not None]
    colours = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    colours = colours if len(colours) >= 10 else [*colours, "#7f7f7f", "#bcbd22", "#17becf"]
    handles = []

    if ax_notes is not None:
        low, high = 60, 72
        for i, track, n in pitched:
            colour = colours[i % len(colours)]
            x0, x1 = to_bar(n["time"]), to_bar(n["time"] + n["duration"])
            y = n["pitch"].astype(np.float64)
            verts = np.empty((len(y), 4, 2))
            verts[:, 0, 0] = verts[:, 1, 0] = x0
            verts[:, 2, 0] = verts[:, 3, 0] = np.maximum(x1, x0 + 0.004 * max(n_bars, 1))
            verts[:, 0, 1] = verts[:, 3, 1] = y - 0.42
            verts[:, 1, 1] = verts[:, 2, 1] = y + 0.42
            ax_notes.add_collection(PolyCollection(verts, facecolors=colour, edgecolors="black", linewidths=0.25, alpha=0.9))
            handles.append((i, Patch(facecolor=colour, edgecolor="black", linewidth=0.25, label=f"{i + 1}. {instrument_name(track.program)}")))
            low, high = min(low, int(y.min())), max(high, int(y.max()))
        pad = max(2, (12 - (high - low)) // 2)
        ax_notes.set_ylim(low - pad, high + pad)
        cs = [p for p in range(0, 128, 12) if low - pad <= p <= high + pad]
        ax_notes.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])
        ax_notes.set_ylabel("pitch")
        if not pitched:
            ax_notes.text(0.5, 0.5, "no notes", transform=ax_notes.transAxes, ha="center", va="center", color="grey")

    if ax_drums is not None:
        keys = sorted({int(p) for _, _, n in drums for p in n["pitch"]})
        row = {k: r for r, k in enumerate(keys)}
        for i, _track, n in drums:
            colour = colours[i % len(colours)]
            ys = np.fromiter((row[int(p)] for p in n["pitch"]), np.float64, len(n["pitch"]))
            ax_drums.scatter(to_bar(n["time"]), ys, marker="x", s=14, linewidths=0.9, color=colour)
            handles.append((i, Line2D([], [], marker="x", linestyle="", color=colour, label=f"{i + 1}. {instrument_name(0, True)}")))
        ax_drums.set_ylim(-0.8, len(keys) - 0.2)
        most = 10 if ax_notes is not None else 24
        shown = keys if len(keys) <= most else keys[:: math.ceil(len(keys) / most)]
        ax_drums.hlines(np.arange(len(keys)), 0, 1, transform=ax_drums.get_yaxis_transform(), colors="#e2e2e2", linewidths=0.4, zorder=0)
        ax_drums.set_yticks([row[k] for k in shown], [drum_name(k) for k in shown], fontsize=6)
        ax_drums.set_facecolor("#f4f4f4")

    for a in axes:
        a.set_xlim(-0.004 * max(n_bars, 1), max(n_bars, 1))  # room for a hit on the first beat
        a.vlines(np.arange(n_bars + 1), 0, 1, transform=a.get_xaxis_transform(), colors="#999999", linewidths=0.6, zorder=0)
        if n_bars <= 32:  # beat lines
            beats = [b for k in range(n_bars) for b in np.arange(bars[k], bars[k + 1], score.tpq)[1:]]
            a.vlines(to_bar(np.asarray(beats)), 0, 1, transform=a.get_xaxis_transform(), colors="#e3e3e3", linewidths=0.4, zorder=0)
        a.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(n_bars, 24) or 1))
        a.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x) + 1}" if x < n_bars else ""))
    for a in axes[:-1]:
        a.tick_params(labelbottom=False)
    chords = _draw_chords(axes[0], score, to_bar)
    axes[-1].set_xlabel("bar")
    meters = sorted({(int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures}) or [(4, 4)]
    info = f"{n_bars} bar{'s' * (n_bars != 1)} · {', '.join(f'{a}/{b}' for a, b in meters)} · {_tempo_text(score)}"
    axes[0].set_title(f"{title} — {info}" if title else info, fontsize=10, loc="left", pad=14 if chords else 6)
    if handles:
        fig.legend(handles=[h for _, h in sorted(handles, key=lambda ih: ih[0])], loc="upper left", bbox_to_anchor=(right + 0.01, top), fontsize=8, frameon=False)
    fig.savefig(str(path), dpi=dpi)
    return path
