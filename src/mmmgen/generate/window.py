"""Songs of any length: bars written window by window over a window that slides (MMM's answer).

The model was trained on windows of ``Engine.window`` bars (8 for the shipped model) and reads at
most ``Engine.context`` words, while a song may be as long as the user likes. Every operation on
a song therefore writes its bars window by window: a *window* is a span ``[start, stop)`` of bars,
and the model reads the song's header and the window's bars of the tracks it may see, never more.

Method (b) of issue 16 (chosen because the shipped model needs no retraining; see
``benchmarks/results/long.md``): a window's first bars are *forced* to bars the song already has,
and its last bars are *sampled* under the grammar masks of ``grammar.py``:

* ``write_track``: a new track of ``n`` bars. Its first window is written as a whole track; each
  later window repeats its most recent bars (and the other tracks' bars of the same span) and
  samples ``new_bars`` more, until the track has ``n`` bars (``add_track`` / ``regenerate_last``).
* ``extend_tracks``: every track gets ``n`` more bars, window by window; in each window the tracks
  are written in song order, so a track sees its own recent bars and the window's bars (old and
  new) of the tracks before it (``Generator.extend``).
* ``infill_tracks``: bar-fill of any bars of one track, each through a window around it.

Each track a window shows in part reads a ``DENSITY`` for the bars it shows (``window_head``), as
training's windows did; a track shown whole keeps its own head. A window holds as many recent bars
as the context allows (``plan``: its words, plus room for the new bars at ``RESERVE`` times the
words per bar seen so far); when a window still runs out of
context (``ContextFull``) it is written again with fewer bars, and only a window of one new bar
without recent bars that does not fit is an error. Songs of at most ``window`` bars that fit are
written in one window: exactly the text (and, for a seed, the words) of a plain call.

Every function that draws words is a *program* (a Python generator): it yields requests
``(text, TrackState, seed)`` and receives the words drawn, so one program runs alone
(``Generator._drive``, which throws ``ContextFull`` back into it) or as one row of a batch of takes
(``batch.run_rows``).

Method (a), MMM bar-fill of the new bars of every track at once (so that every track also sees the
others' recent bars), needs a model trained with such masks; it would replace ``extend_tracks``'s
per-track ``write_span`` with ``infill_tracks``-style fills over a window padded with ``FILL_IN`` bars.
"""

from __future__ import annotations

from dataclasses import replace

from mmmgen.generate.controls import fill_context
from mmmgen.generate.follow import nearest_first
from mmmgen.generate.grammar import EXPECT_BAR, TrackSpec, TrackState
from mmmgen.generate.sampling import ContextFull
from mmmgen.text import vocab as V
from mmmgen.text.fill import TrackWords, mask_bars, sounding_at_end, split_words
from mmmgen.text.vocab import bar_steps

RESERVE = 1.5  # room left for each new bar, in multiples of the words per bar seen so far
DEFAULT_WORDS_PER_BAR = 32  # the estimate before any bar is known
SEED_STRIDE = 100_003  # window w draws with seed + w * SEED_STRIDE (window 0: the seed itself)


def new_bars(engine) -> int:
    """Bars sampled per window after the first: half the window, the other half is recent bars."""
    return max(1, engine.window // 2)


def seeded(seed: int | None, offset: int) -> int | None:
    """The seed of a request ``offset`` draws after ``seed`` (None stays None: fresh randomness)."""
    return None if seed is None else seed + offset


def split_song(text: str) -> tuple[list[str], list[TrackWords]]:
    """The header words and the note tracks (bar by bar) of a song's text (its chord track left out:
    ``progression.chord_track_words`` gives it to a model that knows chords)."""
    piece = split_words(text)
    return piece.header, [t for t in piece.tracks if V.chord_track_inst() not in t.head]


def window_head(head: list[str], bars: list[list[str]], window: int, edges: list[float] | None) -> list[str]:
    """A track's head words for a window whose known bars are ``bars``: its ``DENSITY`` the level of their
    notes per ``window`` bars (training's ``DENSITY`` counts the notes of the window's own bars; a song's
    head, ``prompt.score_song``, the notes per trained window).

    Unchanged without ``edges``, without known bars, and for the chord track. A song's head keeps the
    density of the whole song: a track silent in the window's recent bars would read as dense, and the
    model, trained on heads that describe their window, crowds the new bars with notes it has no
    register or kit for (``benchmarks/results/window-density.md``).
    """
    from mmmgen.text.encode import density_level

    if not edges or not bars or V.chord_track_inst() in head:
        return list(head)
    notes = sum(V.parse_word(w).kind == V.NOTE_ON for bar in bars for w in bar)
    word = V.density(density_level(round(notes * window / len(bars)), edges))
    return [word if V.parse_word(w).kind == V.DENSITY else w for w in head]


def window_text(header: list[str], tracks: list[TrackWords], start: int, stop: int, engine=None) -> str:
    """The header and bars ``[start, stop)`` of ``tracks`` (a held note opens the first bar with ``NOTE_HOLD``);
    with an ``engine`` that has density edges, each track shown in part says the density of its bars shown
    (``window_head``). A track shown whole keeps its head: a song of one window reads as a plain call wrote it."""
    edges, window = (engine.density_edges, engine.window) if engine is not None else (None, 0)
    shown = [(t.head if start == 0 and stop >= len(t.bars) else window_head(t.head, t.bars[start:stop], window, edges),
              t.bars[start:stop]) for t in tracks]
    return " ".join([*header, *(TrackWords(head, bars).text() for head, bars in shown)])


def _bar_words(bars: list[list[str]]) -> int:
    return sum(len(b) + 2 for b in bars)


def words_per_bar(*groups: list[TrackWords]) -> float:
    """Mean words per bar per track over the tracks given (``DEFAULT_WORDS_PER_BAR`` when none)."""
    bars = [b for group in groups for t in group for b in t.bars]
    return _bar_words(bars) / len(bars) if bars else DEFAULT_WORDS_PER_BAR


def fits(engine, header, others, target: TrackWords | None, start: int, done: int, stop: int) -> bool:
    """Whether window ``[start, stop)`` (the target's bars known up to ``done``) fits the context with room for the new bars."""
    per_bar = words_per_bar([target]) if target is not None and target.bars else words_per_bar(others)
    known = len(header) + sum(len(t.head) + 1 + _bar_words(t.bars[start:stop]) for t in others)
    known += (len(target.head) + _bar_words(target.bars[start:done]) if target is not None else 3) + 1
    return known + RESERVE * per_bar * (stop - done) + 2 <= engine.context


def plan(engine, header, others, target: TrackWords | None, done: int, stop: int) -> tuple[int, int]:
    """``(start, stop)``: the window with the most recent bars that fits, new bars ``[done, stop)``
    shortened when even none of them fits (a new track's first window has no recent bars)."""
    while True:
        first = done if target is None else max(0, stop - engine.window)
        for start in range(first, done + 1):
            if fits(engine, header, others, target, start, done, stop):
                return start, stop
        if stop - done <= 1:
            return done, stop  # tried as it is: the engine says when it cannot be done
        stop -= 1


def state_after(spec: TrackSpec, forced: list[list[str]], before: list[str], grid: int,
                head: list[str] = (), earlier: list[list[str]] = ()) -> TrackState:
    """The grammar state of a track whose window already holds ``forced`` bars (``before``: the bar before them).

    With controls, the state also knows what they need of the bars already written (``head`` and
    ``earlier``: the track's head words and all its bars up to the window's new bars): whether it
    is a drum track and how long each note still sounding has sounded.
    """
    # notes the track already has (forced bars, or earlier ones): a track that has notes need not
    # add one to a window of empty bars (a part that has stopped stays silent)
    words = [w for bar in (earlier or forced) for w in bar]
    notes = sum(V.parse_word(w).kind in (V.NOTE_ON, V.NOTE_HOLD) for w in words)
    last = forced[-1] if forced else before
    carry = sounding_at_end(last)
    state = TrackState(spec, grid, phase=EXPECT_BAR, bars_done=len(forced), carry=carry, notes=notes)
    state.last_pitch = next((p for w in reversed(words) if V.parse_word(w).kind == V.NOTE_ON
                             and (p := V.parse_int(V.parse_word(w).value, 0, V.N_PITCHES - 1)) is not None), None)
    if (spec.controls is not None or spec.harmony is not None) and head:
        around = fill_context(list(head), [list(b) for b in earlier], len(earlier), carry, (), spec.time_signature, grid)
        line = len(forced) * bar_steps(spec.time_signature, grid)
        state.born = {p: line - around["ages"].get(p, 0) for p in carry}
        state.is_drum, state.program = around["is_drum"], around["program"]
    return state


def write_window(engine, header, others, target: TrackWords | None, start: int, stop: int, spec: TrackSpec,
                 seed: int | None):
    """The target track with bars up to ``stop``, seeing ``others``' bars and its own in ``[start, stop)``.

    ``target`` None: a new track (its ``INST``/``DENSITY`` sampled under ``spec``), bars ``[start, stop)``.
    """
    context = window_text(header, others, start, stop, engine)
    spec = replace(spec, first_bar=start)  # the chord rule reads the song's time
    if target is None:
        state = TrackState(replace(spec, n_bars=stop - start), engine.grid)
        words = yield f"{context} {V.TRACK_START}", state, seed
        return split_words(" ".join([V.TRACK_START, *words])).tracks[0]
    done = len(target.bars)
    forced = target.bars[start:done]
    state = state_after(replace(spec, n_bars=stop - start), forced, target.bars[start - 1] if start else [], engine.grid,
                        target.head, target.bars[:done])
    # the song's head where the window holds all the track's bars so far, or where a density was asked for
    # (spec.density: what every window of the track reads)
    whole = start == 0 or spec.density is not None
    head = target.head if whole else window_head(target.head, forced, engine.window, engine.density_edges)
    prefix = TrackWords(head, forced).text().rsplit(" ", 1)[0]  # without TRACK_END
    words = yield f"{context} {prefix}", state, seed
    written = split_words(" ".join([*target.head, *words])).tracks[0]
    return TrackWords(list(target.head), [*target.bars, *written.bars])


def write_span(engine, header, others, target: TrackWords | None, done: int, stop: int, spec: TrackSpec,
               seed: int | None):
    """``write_window`` over as many recent bars as fit, retried with fewer when the context runs out.

    What the model reads is chosen in this order: fewer recent bars, fewer new bars, then fewer
    other tracks (the farthest from the target in role and register first, ``follow.nearest_first``);
    only one new bar of the target alone that does not fit is an error.
    Returns the target with bars up to ``stop`` or, after a retry with fewer new bars, fewer (at least one more).
    """
    order = nearest_first(others, target)  # indexes into ``others``, nearest first
    while True:
        shown = [others[k] for k in sorted(order)]
        start, stop = plan(engine, header, shown, target, done, stop)
        if order and not fits(engine, header, shown, target, start, done, stop):
            order = order[:-1]  # even one new bar without recent ones does not fit: the farthest track goes
            continue
        try:
            return (yield from write_window(engine, header, shown, target, start, stop, spec, seed))
        except ContextFull:
            if target is not None and start < done:  # the same bars without recent ones
                try:
                    return (yield from write_window(engine, header, shown, target, done, stop, spec, seed))
                except ContextFull:
                    pass
            if stop - done > 1:
                stop = done + (stop - done) // 2
            elif order:
                order = order[:-1]
            else:
                msg = (f"bar {done + 1} of the track would exceed the model's context of {engine.context} tokens even alone "
                       f"(a window with no other track and no recent bar)")
                raise ContextFull(msg) from None


def write_track(engine, header, others: list[TrackWords], n_bars: int, spec: TrackSpec, seed: int | None):
    """A new track of ``n_bars`` bars, window by window, each window seeing ``others``' bars of its span."""
    target, w = None, 0
    while target is None or len(target.bars) < n_bars:
        done = 0 if target is None else len(target.bars)
        stop = min(n_bars, engine.window if target is None else done + new_bars(engine))
        target = yield from write_span(engine, header, others, target, done, stop, spec, seeded(seed, w * SEED_STRIDE))
        w += 1
    return target


def extend_tracks(engine, header, tracks: list[TrackWords], n_new: int, specs: list[TrackSpec], seed: int | None,
                  context: list[TrackWords] = ()):
    """Every track with ``n_new`` more bars, window by window; in a window, tracks are written in order.

    ``context``: tracks every window shows first, already as long as the result (the chord track)."""
    tracks = list(tracks)
    end = len(tracks[0].bars) + n_new
    done, w = len(tracks[0].bars), 0
    while done < end:
        stop = min(done + new_bars(engine), end)
        written: list[TrackWords] = []
        while len(written) < len(tracks):
            written = []
            for i, (track, spec) in enumerate(zip(tracks, specs, strict=True)):
                new = yield from write_span(engine, header, [*context, *written], track, done, stop, spec, seeded(seed, w * SEED_STRIDE + i))
                if len(new.bars) < stop:  # this track needed a shorter window: every track takes it, again
                    stop = len(new.bars)
                    break
                written.append(new)
        tracks, done, w = written, stop, w + 1
    return tracks


MIN_FILL_BARS = 2  # bars an infill window keeps (the fill's and one beside it) before it leaves out other tracks


def infill_size(header, tracks: list[TrackWords], shown: list[int], track: int, start: int, stop: int, pending: list[int]) -> float:
    """Words of an infill window (``shown`` tracks, bars ``[start, stop)``), with room for its fills."""
    fills = [p for p in pending if start <= p < stop]
    words = len(header) + sum(len(tracks[k].head) + 1 + _bar_words(tracks[k].bars[start:stop]) for k in shown)
    words -= sum(len(tracks[track].bars[p]) - 1 for p in fills)  # a masked bar reads BAR_START FILL_IN BAR_END
    return words + len(fills) * (RESERVE * words_per_bar([tracks[track]]) + 2)


def infill_window(engine, header, tracks: list[TrackWords], track: int, pending: list[int], limit: int) -> tuple[int, int, list[int]]:
    """``(start, stop, shown)``: the window around the first pending bar and the tracks it shows (song order).

    Up to ``window`` bars around it (``window // 2`` before where the song allows) and every track;
    while that exceeds ``limit`` words: fewer bars (down to ``MIN_FILL_BARS``; later bars go
    first), then fewer tracks (the farthest from the track in role and register first), then one bar.
    """
    b, n = pending[0], len(tracks[track].bars)
    start = max(0, min(b - engine.window // 2, n - engine.window))
    stop = min(n, start + engine.window)
    order = [track, *(k if k < track else k + 1 for k in nearest_first(tracks[:track] + tracks[track + 1 :], tracks[track]))]
    while infill_size(header, tracks, order, track, start, stop, pending) > limit:
        if stop - start > MIN_FILL_BARS or (len(order) == 1 and stop - start > 1):
            if stop - 1 > b:
                stop -= 1
            else:
                start += 1
        elif len(order) > 1:
            order = order[:-1]
        else:
            break  # one bar of the track alone: the engine says whether it fits
    return start, stop, sorted(order)


def infill_tracks(engine, header, tracks: list[TrackWords], track: int, bars: list[int], spec: TrackSpec,
                  seed: int | None):
    """``tracks`` with ``bars`` of one track written anew by bar-fill, each through a window around it.

    A window (``infill_window``) holds the first bar still to write, up to ``window // 2`` bars
    before it and the tracks that fit; every bar to write in the window is written there, in order
    (fill ``i`` draws with seed + i). When a fill runs out of context the rest is written through
    smaller windows; only a bar that does not fit alone is an error. Songs of at most ``window`` bars
    that fit are one window: the whole song.
    """
    tracks = [TrackWords(list(t.head), [list(b) for b in t.bars]) for t in tracks]
    pending, i, limit = sorted(bars), 0, engine.context
    while pending:
        start, stop, shown = infill_window(engine, header, tracks, track, pending, limit)
        here = [p for p in pending if start <= p < stop]
        context = mask_bars(window_text(header, [tracks[k] for k in shown], start, stop, engine),
                            {shown.index(track): [p - start for p in here]}, with_fills=False)
        try:
            for p in here:
                before = tracks[track].bars[p - 1] if p > 0 else []
                carried, around = sounding_at_end(before), {}
                if spec.controls is not None or spec.harmony is not None:  # what the control rules need to know of the bars around
                    around = fill_context(tracks[track].head, tracks[track].bars, p, carried, bars, spec.time_signature, engine.grid)
                state = TrackState.for_fill(replace(spec, first_bar=p), carried, engine.grid, **around)
                context += f" {V.FILL_START}"
                words = yield context, state, seeded(seed, i)
                context += " " + " ".join(words)
                tracks[track].bars[p] = words[:-1]  # without FILL_END
                pending.remove(p)
                i += 1
        except ContextFull:
            if stop - start <= 1 and shown == [track]:
                msg = f"bar {pending[0] + 1} of track {track + 1} would exceed the model's context of {engine.context} tokens even alone"
                raise ContextFull(msg) from None
            limit = int(0.75 * infill_size(header, tracks, shown, track, start, stop, pending))
    return tracks
