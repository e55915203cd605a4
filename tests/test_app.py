"""The web app through its API (gradio_client), under concurrency, and in a real browser."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
from synth import random_score, write
from tiny import untrained_model

from mmmgen.app import AppSettings, build_app, serve
from mmmgen.generate.song import Generator
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.fill import split_words

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CONTROLS = {"temperature": 0.9, "genre": "POP", "instrument": "Model's choice", "density": "auto", "tempo": 120, "seed": 0, "bars": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    model, tokenizer = untrained_model()
    demo = build_app(Generator(model, tokenizer), AppSettings(bars=2, concurrency=2, queue_size=32))
    port = free_port()
    serve(demo, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def call(client, api: str, **overrides):
    args = {**CONTROLS, **overrides}
    return client.predict(*args.values(), api_name=api)


def tracks_of(text: str) -> int:
    return text.split().count(V.TRACK_START)


def test_every_api_name(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    assert {"/start", "/add", "/remove_last", "/regenerate_last", "/change_tempo", "/regenerate_bars", "/upload", "/extend"} <= set(
        c.view_api(return_format="dict")["named_endpoints"]
    )
    audio, midi, roll, instruments, tokens = call(c, "/start", seed=1)
    assert Path(audio).stat().st_size > 1000 and Path(midi).suffix == ".mid" and Path(roll).suffix == ".png"
    assert tracks_of(tokens) == 1 and len(instruments.splitlines()) == 1
    *_, instruments, tokens = call(c, "/add", seed=2, instrument="Violin")
    assert tracks_of(tokens) == 2 and instruments.splitlines()[1] == "2. Violin"
    *_, regenerated = call(c, "/regenerate_last", seed=3)
    assert regenerated.split("TRACK_END")[0] == tokens.split("TRACK_END")[0]
    assert text_to_piece(regenerated).tracks[1].program == 40  # same instrument, new notes
    *_, tempo_text = call(c, "/change_tempo", tempo=90)
    assert tempo_text == regenerated  # tempo re-renders, nothing is regenerated
    *_, filled = c.predict(*{**CONTROLS, "seed": 4}.values(), 1, 2, 2, api_name="/regenerate_bars")
    old, new = split_words(regenerated), split_words(filled)
    assert old.tracks[1] == new.tracks[1] and old.tracks[0].bars[0] == new.tracks[0].bars[0]  # only bar 2 of track 1 changes
    *_, longer = c.predict(*{**CONTROLS, "seed": 5}.values(), 3, api_name="/extend")  # 3 new bars on every track
    assert [t.bars[:2] for t in split_words(longer).tracks] == [t.bars for t in new.tracks]
    assert [t.n_bars for t in text_to_piece(longer, strict=True).tracks] == [5, 5]
    *_, default = call(c, "/extend", seed=6)  # the number of new bars has a default: one trained window
    assert text_to_piece(default, strict=True).n_bars == 7
    *_, instruments, tokens = call(c, "/remove_last")
    assert tracks_of(tokens) == 1 and len(instruments.splitlines()) == 1
    for text, n_bars in ((tokens, 7), (regenerated, 2)):
        for track in text_to_piece(text, strict=True).tracks:
            assert track.n_bars == n_bars and track.notes


def test_impossible_actions_keep_the_page(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    *_, tokens = call(c, "/remove_last")  # nothing to remove: a warning, the outputs stay as they are
    assert tokens == {"__type__": "update"}
    *_, tokens = call(c, "/start", seed=5)
    *_, same = call(c, "/start", seed=5)
    assert tokens == same  # a seed makes an action reproducible


def test_upload_a_midi_file_and_reject_bad_ones(app_url, tmp_path):
    from gradio_client import Client, handle_file

    c = Client(app_url, verbose=False)
    good = write(random_score(3, n_bars=4), tmp_path / "song.mid")
    *_, instruments, tokens = c.predict(handle_file(str(good)), 100, api_name="/upload")
    piece = text_to_piece(tokens, strict=True)
    assert piece.tracks and piece.n_bars >= 4 and len(instruments.splitlines()) == len(piece.tracks)  # every bar kept
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    *_, after = c.predict(handle_file(str(bad)), 100, api_name="/upload")
    assert after == {"__type__": "update"}  # a warning; the previous song stays on the page


def test_sessions_never_share_a_song(app_url):
    from gradio_client import Client

    results, errors = {}, []

    def session(i: int):
        try:
            c = Client(app_url, verbose=False)
            *_, first = call(c, "/start", seed=100 + i)
            *_, second = call(c, "/add", seed=200 + i)
            results[i] = (first, second)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors and len(results) == 8
    for first, second in results.values():
        assert second.startswith(first) and tracks_of(second) == 2


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def wait_or_explain(page, action: str, condition: str, arg=None, timeout_ms: int = 120_000):
    """``page.wait_for_function``; on a timeout, fail with what the page shows (its messages, seed, text)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = page.evaluate(
            "() => ({text: (document.querySelector('#tokens textarea') || {}).value,"
            " seed: (document.querySelector('#seed_used textarea') || {}).value,"
            " body: document.body.innerText.slice(0, 3000)})"
        )
        words = (shown["text"] or "").split()
        pytest.fail(
            f"{action}: the page did not settle in {timeout_ms / 1000:.0f} s: {words.count(V.TRACK_START)} tracks, "
            f"{words.count(V.BAR_START)} bars, seed used {shown['seed']!r}; the page reads:\n{shown['body']}"
        )


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
def test_in_a_real_browser(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else outside.append(r.url))
        page.goto(app_url)
        tokens = page.locator("#tokens textarea")
        instruments = page.locator("#instruments textarea")

        def click(label: str, expect_tracks: int, sampled: bool = True):
            # Done when the page shows this action's own result: a new text and, for a sampled action, its
            # new seed (a late seed of the action before must not count). Waiting for "processing" alone
            # raced on a loaded machine: the next click ran beside this action on an older song.
            before = [page.locator(f"#{e} textarea").input_value() for e in ("tokens", "seed_used")]
            page.get_by_role("button", name=label, exact=True).click()
            wait_or_explain(  # the text and the instrument list both show the new song
                page, label,
                "([n, text, seed, sampled]) => { const t = document.querySelector('#tokens textarea'),"
                " i = document.querySelector('#instruments textarea'), s = document.querySelector('#seed_used textarea');"
                " return t && i && s && t.value !== text && (!sampled || (s.value !== seed && s.value !== ''))"
                " && t.value.split(' ').filter(w => w === 'TRACK_START').length === n"
                " && i.value.split('\\n').filter(x => x.trim()).length === n"
                " && !document.body.innerText.includes('processing'); }",
                [expect_tracks, *before, sampled],
            )
            text = tokens.input_value()
            assert tracks_of(text) == expect_tracks
            assert len(instruments.input_value().splitlines()) == expect_tracks
            return text

        click("Start from scratch", 1)
        click("Add instrument", 2)
        click("Add instrument", 3)
        before = click("Regenerate last instrument", 3)
        click("Remove last instrument", 2, sampled=False)
        click("Regenerate bars", 2)
        page.get_by_role("button", name="Continue", exact=True).click()  # 2 more bars (the default) on both tracks
        wait_or_explain(
            page, "Continue",
            "() => { const t = document.querySelector('#tokens textarea');"
            " return t && t.value.split(' ').filter(w => w === 'BAR_START').length === 2 * 4; }",
        )
        assert {t.n_bars for t in text_to_piece(tokens.input_value(), strict=True).tracks} == {4}
        page.get_by_role("button", name="Change tempo", exact=True).click()
        page.wait_for_timeout(300)
        wait_or_explain(page, "Change tempo", "() => !document.body.innerText.includes('processing')")
        expect(page.locator("#audio a.download-link").first).to_have_attribute("href", re.compile(r"\.wav$"), timeout=60_000)
        expect(page.locator("#pianoroll img")).to_have_count(1, timeout=60_000)
        expect(page.locator("#midi a.download-link").first).to_have_attribute("href", re.compile(r"\.mid$"))
        assert tracks_of(before) == 3
        out = Path(os.environ.get("MMMGEN_TEST_ARTIFACTS", tmp_path))
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "app.png"), full_page=True)
        browser.close()
    assert not outside, f"the page reached outside this machine: {outside[:5]}"


# --- undo/redo, takes, controls, seeds, drum kits, per-session files (issue 17) --------------------
EXTRA = {"top_p": 1.0, "top_k": 0, "meter": "4/4", "scale": "off", "pitch_low": 0, "pitch_high": 127, "drum_kit": "Standard", "takes": 1}


def callx(client, api: str, **overrides):
    """``call`` with the parameters added after the original ones (issue 17), in their order."""
    args = {**CONTROLS, **EXTRA, **overrides}
    return client.predict(*args.values(), api_name=api)


def session_info(client) -> tuple[str, str, int]:
    """``(seed used, uploaded key, takes on offer)`` of the client's session."""
    seed, key, _choice, *audios = client.predict(api_name="/session_info")
    return seed, key, sum(1 for a in audios if isinstance(a, dict) and a.get("visible"))


def test_undo_and_redo_restore_exactly_the_previous_song(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    *_, a = callx(c, "/start", seed=21)
    *_, b = callx(c, "/add", seed=22)
    *_, b2 = callx(c, "/regenerate_last", seed=23)
    *_, b3 = callx(c, "/change_tempo", tempo=95)
    assert b3 == b2 != b and tracks_of(b) == 2
    assert c.predict(api_name="/undo")[-1] == b2  # tempo back (the text is the same)
    assert c.predict(api_name="/undo")[-1] == b
    assert c.predict(api_name="/undo")[-1] == a
    assert c.predict(api_name="/redo")[-1] == b
    assert c.predict(api_name="/redo")[-1] == b2
    assert c.predict(api_name="/undo")[-1] == b
    *_, other = callx(c, "/remove_last")  # a new action forgets what could be redone
    assert other == a
    assert c.predict(api_name="/redo")[-1] == {"__type__": "update"}  # nothing to redo: a warning
    assert c.predict(api_name="/undo")[-1] == b
    assert c.predict(api_name="/undo")[-1] == a
    assert c.predict(api_name="/undo")[-1] == ""  # back to the empty page
    assert c.predict(api_name="/undo")[-1] == {"__type__": "update"}  # nothing more to undo


def test_stop_ends_a_running_generation_so_the_next_action_does_not_wait():
    from gradio_client import Client

    from mmmgen.generate.sampling import Cancelled

    class Watched(Generator):  # notes when a generation starts and when one is stopped
        def _sample_words(self, *args, **kwargs):
            self.started.set()
            try:
                return super()._sample_words(*args, **kwargs)
            except Cancelled:
                self.cancelled.set()
                raise

    model, tokenizer = untrained_model()
    gen = Watched(model, tokenizer)
    gen.started, gen.cancelled = threading.Event(), threading.Event()
    demo = build_app(gen, AppSettings(bars=2, concurrency=1))
    port = free_port()
    serve(demo, port=port, block=False)
    try:
        c = Client(f"http://127.0.0.1:{port}/", verbose=False)
        job = c.submit(*{**CONTROLS, "bars": 128}.values(), api_name="/start")  # a long one (many windows)
        assert gen.started.wait(60)
        c.predict(api_name="/stop")
        assert gen.cancelled.wait(30)  # the running generation itself ended, not only the request
        try:  # the stopped action leaves the page as it was (or its request was cancelled first)
            job.result(timeout=60)
        except concurrent.futures.CancelledError:
            pass
        *_, tokens = call(c, "/start", seed=3)  # the model is free again at once
        assert tracks_of(tokens) == 1 and text_to_piece(tokens, strict=True).n_bars == 2
        c.predict(api_name="/stop")  # nothing running: nothing happens
        *_, again = call(c, "/start", seed=3)
        assert again == tokens
    finally:
        demo.close()


def test_history_is_bounded():
    from mmmgen.app_session import HISTORY, Session

    s = Session()
    for i in range(HISTORY + 5):
        s.record(i)
    assert len(s.past) == HISTORY and s.past[0] == 5 and s.undo("now") == HISTORY + 4 and s.future == ["now"]
    assert s.undo(HISTORY + 4, redo=True) == "now" and not s.future


def test_seed_used_is_shown_and_makes_the_same_song(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    *_, first = callx(c, "/start", seed=0)  # a fresh seed, drawn and shown
    seed, _, _ = session_info(c)
    assert seed.isdigit() and int(seed) > 0
    *_, again = callx(c, "/start", seed=int(seed))
    assert again == first


def test_takes_play_and_one_is_kept(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    *_, shown = callx(c, "/start", seed=30, instrument="Violin", takes=3)
    seeds, _, offered = session_info(c)
    assert offered == 3 and seeds.count("take") == 3
    take_seeds = [int(part.split(": ")[1]) for part in seeds.split(", ")]
    assert sorted(take_seeds) == [30, 31, 32]
    *_, kept = c.predict("2", api_name="/keep_take")
    other = Client(app_url, verbose=False)  # take 2 is made again from its seed alone
    *_, remade = callx(other, "/start", seed=take_seeds[1], instrument="Violin")
    assert kept == remade and tracks_of(kept) == 1
    assert session_info(c)[0] == str(take_seeds[1])
    assert c.predict(api_name="/undo")[-1] == shown  # keeping is an action like any other
    with pytest.raises(Exception, match="not in the list of choices"):  # no such take: gradio refuses it
        c.predict("9", api_name="/keep_take")


def test_controls_meter_sampling_and_drum_kit_through_the_api(app_url):
    from gradio_client import Client
    from symusic import Score

    from mmmgen.generate.controls import Controls, violations

    c = Client(app_url, verbose=False)
    extra = {"top_p": 0.9, "top_k": 40, "meter": "3/4", "scale": "D:dorian", "pitch_low": 50, "pitch_high": 70}
    *_, tokens = callx(c, "/start", seed=40, instrument="Violin", **extra)
    assert "TIME_SIGNATURE=3_4" in tokens
    *_, tokens = callx(c, "/add", seed=41, instrument="Flute", **extra)
    for track in text_to_piece(tokens, strict=True).tracks:
        assert violations([(p, a, e) for p, a, e, _ in track.notes], Controls("D:dorian", (50, 70)), 12) == []
    _, midi, *_ = callx(c, "/add", seed=42, instrument="Drums", drum_kit="Brush")
    drums = [t for t in Score(midi).tracks if t.is_drum]
    assert drums and drums[0].program == 40  # GM2 Brush kit
    *_, bad = callx(c, "/add", seed=43, scale="C:major", pitch_low=61, pitch_high=61)
    assert bad == {"__type__": "update"}  # no common pitch: a warning before sampling
    *_, bad = callx(Client(app_url, verbose=False), "/start", seed=44, scale="Key of the uploaded MIDI")
    assert bad == {"__type__": "update"}  # nothing uploaded yet


def test_key_of_the_uploaded_midi(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from symusic import Note, Score, Track

    score = Score(480)
    track = Track(program=0)
    for i, pitch in enumerate([62, 66, 69, 74, 73, 71, 69, 67, 66, 64, 62, 69, 66, 62] * 2):  # D major
        track.notes.append(Note(i * 480, 480, pitch, 80))
    score.tracks.append(track)
    path = tmp_path / "d.mid"
    score.dump_midi(str(path))
    c = Client(app_url, verbose=False)
    c.predict(handle_file(str(path)), 120, api_name="/upload")
    assert session_info(c)[1] == "D:major"
    *_, tokens = callx(c, "/add", seed=50, instrument="Violin", scale="Key of the uploaded MIDI")
    new = text_to_piece(tokens, strict=True).tracks[-1]
    assert new.notes and all(p % 12 in {2, 4, 6, 7, 9, 11, 1} for p, *_ in new.notes)


def test_render_folders_are_bounded_per_session(app_url):
    from gradio_client import Client

    from mmmgen.app_session import KEEP_RENDERS, MAX_APP_TAKES, Session, close_session

    s = Session()
    c = Client(app_url, verbose=False)
    for i in range(KEEP_RENDERS + MAX_APP_TAKES + 3):
        callx(c, "/start", seed=60 + i)
    folder = Path(c.predict(*CONTROLS.values(), api_name="/change_tempo")[1]).parent  # gradio's copy; ours is private
    assert folder.exists()
    tmp = Path(__import__("tempfile").mkdtemp())
    for i in range(KEEP_RENDERS + MAX_APP_TAKES + 5):
        d = tmp / str(i)
        d.mkdir()
        s.keep(d)
    assert len(list(tmp.iterdir())) == KEEP_RENDERS + MAX_APP_TAKES
    close_session(s)
    assert not list(tmp.iterdir())


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
def test_in_a_real_browser_keep_a_take_then_undo(app_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(app_url)
        tokens = page.locator("#tokens textarea")

        def settle(condition: str, arg=None):
            page.wait_for_timeout(500)
            wait_or_explain(
                page, condition,
                "a => { const t = document.querySelector('#tokens textarea');"
                f" return t && ({condition}) && !document.body.innerText.includes('processing'); }}",
                arg,
            )

        takes = page.locator("#takes input[type=number]")
        takes.fill("2")
        takes.press("Enter")
        page.get_by_role("button", name="Start from scratch", exact=True).click()
        settle("t.value.includes('TRACK_START')")
        expect(page.locator("#take_2")).to_be_visible(timeout=60_000)  # each take can be played
        expect(page.locator("#seed_used textarea")).to_have_value(re.compile(r"take 1: \d+, take 2: \d+"))
        first = tokens.input_value()
        page.locator("#take_choice").get_by_text("2", exact=True).click()
        page.get_by_role("button", name="Keep take", exact=True).click()
        settle("t.value !== a && t.value.includes('TRACK_START')", first)
        kept = tokens.input_value()
        assert kept != first and tracks_of(kept) == 1
        page.get_by_role("button", name="Undo", exact=True).click()
        settle("t.value === a", first)
        page.get_by_role("button", name="Redo", exact=True).click()
        settle("t.value === a", kept)
        browser.close()


def test_free_is_an_api_parameter_of_every_action_that_writes_into_the_song(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    endpoints = c.view_api(return_format="dict")["named_endpoints"]
    for api in ("/add", "/regenerate_last", "/regenerate_bars", "/extend"):
        assert "free" in [p["parameter_name"] for p in endpoints[api]["parameters"]], api
    call(c, "/start", seed=21)
    *_, followed = c.predict(*{**CONTROLS, "seed": 22}.values(), 2, api_name="/extend")
    *_, free = c.predict(*{**CONTROLS, "seed": 22}.values(), 2, free=True, api_name="/extend")
    assert text_to_piece(followed, strict=True).n_bars == 4 and text_to_piece(free, strict=True).n_bars == 6
