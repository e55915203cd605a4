"""How the next word is drawn: ``Sampling`` (temperature, top-k, top-p, seed) and the seeded draw.

``stop_when(event)`` makes the generations run in its block stoppable: once ``event`` is set,
the next word raises ``Cancelled`` (the app's Stop button; a caller's own timeout).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from mmmgen.errors import MMMGenError


class GenerationError(MMMGenError):
    """An impossible request: no track to remove, a song longer than the model's context, ..."""


class ContextFull(GenerationError):
    """The text being written reached the model's context (a window with fewer bars may still fit)."""


class Cancelled(GenerationError):
    """The generation was stopped on request (``stop_when``) before it finished; nothing of it is kept."""


# The stop event of the generations running in this context (a thread's own value; see ``stop_when``).
_STOP: ContextVar = ContextVar("mmmgen_stop", default=None)


@contextmanager
def stop_when(event):
    """Generations in this block check ``event`` (a ``threading.Event``) before every word and raise ``Cancelled`` once it is set.

    The value is this thread's (a ``ContextVar``): other threads' generations are not affected.
    """
    token = _STOP.set(event)
    try:
        yield event
    finally:
        _STOP.reset(token)


def _stop_event():
    """The event ``stop_when`` set for this context, or None."""
    return _STOP.get()


def _check_stop(event) -> None:
    """Raise ``Cancelled`` when ``event`` (from ``_stop_event``) is set."""
    if event is not None and event.is_set():
        msg = "stopped: the generation was cancelled before it finished"
        raise Cancelled(msg)


# What the generations running in this context report their progress to (see ``on_progress``).
_PROGRESS: ContextVar = ContextVar("mmmgen_progress", default=None)


@contextmanager
def on_progress(callback):
    """Generations in this block call ``callback(n)`` each time they have written ``n`` more bars
    (of one track each: a track's new bars, or filled bars), e.g. ``tqdm.update``. This thread's own."""
    token = _PROGRESS.set(callback)
    try:
        yield callback
    finally:
        _PROGRESS.reset(token)


def _report_progress(words: list[str]) -> None:
    """Tell ``on_progress``'s callback how many bars ``words`` (one request's drawn words) completed."""
    from mmmgen.text import vocab as V

    callback = _PROGRESS.get()
    if callback is not None and (n := sum(w in (V.BAR_END, V.FILL_END) for w in words)):
        callback(n)


@dataclass(frozen=True)
class Sampling:
    """How words are drawn: temperature, top-k, top-p (nucleus), seed (None = fresh randomness)."""

    temperature: float = 0.85
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.temperature <= 5:
            msg = f"temperature must be in (0, 5], got {self.temperature}"
            raise GenerationError(msg)
        if not 0 < self.top_p <= 1 or self.top_k < 0:
            msg = f"top_p must be in (0, 1] and top_k >= 0, got {self.top_p}, {self.top_k}"
            raise GenerationError(msg)



def _probs(logits, banned: np.ndarray, sampling: Sampling):
    """Probabilities of the next word: ``banned`` words left out, then temperature, top-k and top-p.

    ``logits`` is one row ``[vocab]`` or several ``[rows, vocab]`` (``banned`` of the same shape):
    every step works along the last axis, so each row comes out as it would alone.
    """
    import torch

    logits = logits.masked_fill(torch.from_numpy(banned), float("-inf")).div_(sampling.temperature)
    if sampling.top_k:
        kth = torch.topk(logits, min(sampling.top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if sampling.top_p < 1:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, -1) - sorted_p < sampling.top_p  # always keeps the top word
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
    return probs


def _draw(logits, banned: np.ndarray, sampling: Sampling, gen) -> int:
    """Sample one id from ``_probs`` with the seeded generator.

    It draws as ``torch.multinomial(probs, 1)`` does (one ``Exp(1)`` per word, the argmax of
    ``probs / noise``: its fast path for one sample), without its checks of the probabilities
    (several passes over them; they hold by construction): a seed gives the same words.
    """
    import torch

    probs = _probs(logits, banned, sampling)
    noise = torch.empty_like(probs).exponential_(1, generator=gen)
    return int(torch.div(probs, noise, out=noise).argmax())




def _draw_rows(logits, banned: np.ndarray, sampling: Sampling, gens) -> list[int]:
    """``_draw`` for several rows at once (``logits`` ``[rows, vocab]``), row ``i`` with its own generator ``gens[i]``.

    Each row draws the same random numbers as ``_draw`` with that generator would (one ``Exp(1)``
    per word, from its own generator), so a row's word does not depend on the other rows.
    """
    import torch

    probs = _probs(logits, banned, sampling)
    n = probs.shape[-1]
    noise = torch.stack([torch.empty(n).exponential_(1, generator=g) for g in gens])
    return torch.div(probs, noise, out=noise).argmax(-1).tolist()
