"""Stopping a running generation (``stop_when``): it ends at its next word, keeps nothing, and the engine stays usable."""

from __future__ import annotations

import threading

import pytest

from mmmgen.generate.sampling import Cancelled, GenerationError, Sampling, stop_when
from mmmgen.generate.song import Generator, generate_song


class WordCounter:
    """Wraps a generator's per-word draw hooks: counts words and sets ``reached`` after ``after`` of them."""

    def __init__(self, gen: Generator, after: int) -> None:
        self.words, self.after, self.reached = 0, after, threading.Event()
        from mmmgen.generate import batch, engine

        self._modules = (engine, batch)
        self._allowed = engine.allowed
        counter = self

        def counting(state, table):
            counter.words += 1
            if counter.words >= counter.after:
                counter.reached.set()
            return counter._allowed(state, table)

        engine.allowed = batch.allowed = counting

    def close(self) -> None:
        for module in self._modules:
            module.allowed = self._allowed


@pytest.fixture
def counter(generator):
    made = []

    def make(after: int) -> WordCounter:
        made.append(WordCounter(generator, after))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_a_set_event_stops_before_the_first_word(generator):
    stop = threading.Event()
    stop.set()
    with stop_when(stop), pytest.raises(Cancelled, match="cancelled"):
        generator.start("POP", n_bars=2, sampling=Sampling(seed=1))
    assert isinstance(Cancelled("x"), GenerationError)  # the app and CLI show it as any impossible request


@pytest.mark.parametrize("takes", [None, 3])
def test_a_generation_stops_at_its_next_word_and_the_engine_stays_usable(generator, counter, takes):
    expected = generate_song(generator, 3, "POP", n_bars=6, sampling=Sampling(seed=5), takes=takes)
    total = WordCounter(generator, 10**9)
    try:
        generate_song(generator, 3, "POP", n_bars=6, sampling=Sampling(seed=5), takes=takes)
    finally:
        total.close()
    c = counter(40)
    stop, errors = threading.Event(), []

    def run():
        try:
            with stop_when(stop):
                generate_song(generator, 3, "POP", n_bars=6, sampling=Sampling(seed=5), takes=takes)
        except Exception as exc:  # the test looks at what was raised
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert c.reached.wait(60)
    stop.set()
    worker.join(60)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    assert c.words < total.words  # it ended before the whole piece was written
    # the stopped call left no keys/values behind: the same seed gives the same piece as before
    again = generate_song(generator, 3, "POP", n_bars=6, sampling=Sampling(seed=5), takes=takes)
    if takes is None:
        assert again == expected
    else:  # a prompt read from the cache or afresh can round the log-likelihood's last bits differently
        assert [t.song for t in again] == [t.song for t in expected]
        assert [t.log_likelihood_per_note for t in again] == pytest.approx([t.log_likelihood_per_note for t in expected], rel=1e-5)


def test_stop_when_is_per_thread(generator):
    stop = threading.Event()
    stop.set()
    results = []

    def other():  # another thread's generation does not see this thread's event
        results.append(generator.start("POP", n_bars=1, sampling=Sampling(seed=2)))

    with stop_when(stop):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join(60)
    assert len(results) == 1 and results[0].tracks
