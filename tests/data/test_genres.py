"""``mmmgen genres``: artist CSVs, folder genres, genre maps, Spotify lookups and the balance report.

Spotify is imitated by a local HTTP server on 127.0.0.1; the real API is never contacted (an
autouse fixture points the client's default URLs at a closed local port).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from mmmgen.cli import main
from mmmgen.data import artists as A
from mmmgen.data import genres as G
from mmmgen.data import spotify as S
from mmmgen.data.prepare import read_genres_csv
from mmmgen.text import vocab as V

SHARED = Path(__file__).resolve().parents[3] / "shared" / "midi-dev" / "lmd_clean_style"

TUTORIAL_CSV = '''Artist,Genre_ChatGPT,Formatted_Artist
"Amos, Tori",Alternative,"AMOS,_TORI"
ABBA,Pop,ABBA
"""Weird Al"" Yankovic",Other,"""WEIRD_AL""_YANKOVIC"
"Earth, Wind & Fire",Funk,"EARTH,_WIND_&_FIRE"
Eminem,Hip Hop,EMINEM
Marvin Gaye,R&B/Soul,MARVIN_GAYE
'''

# The LMD-clean layout: Artist/Title.mid (contents are never parsed by `genres`).
LMD_FILES = [
    "ABBA/Dancing Queen.1.mid",
    "ABBA/Waterloo.mid",
    '"Weird Al" Yankovic/Eat It.mid',
    "Amos, Tori/Cornflake Girl.mid",
    "Earth Wind and Fire/September.MID",
    "Eminem/Lose Yourself.mid",
    "Unknown Band/Song.mid",
    "loose.mid",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach the internet: default Spotify URLs point at a closed local port."""
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMMGEN_SPOTIFY_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MMMGEN_SPOTIFY_AUTH_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def make_lmd(root: Path, files=LMD_FILES) -> Path:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"MThd")
    return root


# --- a fake Spotify -----------------------------------------------------------------------------
class FakeSpotify:
    """State of the fake server: artists' genres, scripted error answers, a request log."""

    def __init__(self, artists: dict[str, list[str]], script: dict[str, list[int]] | None = None):
        self.artists = artists
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.searches: list[str] = []
        self.tokens = 0
        self.retry_after = "2"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, payload: dict | None = None, headers: dict | None = None) -> None:
        body = json.dumps(payload or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        state: FakeSpotify = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        state.tokens += 1
        expected = "Basic " + base64.b64encode(b"id:secret").decode()
        if self.path != "/api/token" or "grant_type=client_credentials" not in body:
            return self._send(404, {"error": "not found"})
        if self.headers.get("Authorization") != expected:
            return self._send(400, {"error": "invalid_client"})
        return self._send(200, {"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})

    def do_GET(self):
        state: FakeSpotify = self.server.state
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/v1/search" or query.get("type") != ["artist"] or query.get("limit") != ["1"]:
            return self._send(404, {"error": "not found"})
        if self.headers.get("Authorization") != "Bearer tok":
            return self._send(401, {"error": "bad token"})
        name = query["q"][0].removeprefix("artist:")
        state.searches.append(name)
        script = state.script.get(name)
        if script:
            status = script.pop(0)
            headers = {"Retry-After": state.retry_after} if status == 429 else None
            return self._send(status, {"error": {"status": status}}, headers)
        genres = state.artists.get(name)
        items = [] if genres is None else [{"name": name, "id": "x" + name, "genres": genres}]
        return self._send(200, {"artists": {"items": items, "total": len(items)}})


@pytest.fixture
def spotify_server():
    servers = []

    def start(artists, script=None):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.state = FakeSpotify(artists, script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server.state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_client(base: str, sleeps: list[float], **kwargs) -> S.SpotifyClient:
    kwargs.setdefault("max_retries", 2)
    return S.SpotifyClient("id", "secret", api_url=base, auth_url=base, sleep=sleeps.append, timeout=5, **kwargs)


# --- artist names and CSVs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ('"Weird Al" Yankovic', "Weird Al Yankovic"),
        ('"Weird Al" Yankovic', '"WEIRD_AL"_YANKOVIC'),
        ("Amos, Tori", "AMOS,_TORI"),
        ("Earth, Wind & Fire", "earth wind and fire"),
        ("Rich , Buddy", "Rich Buddy"),
        ("Beyoncé", "BEYONCE"),
    ],
)
def test_artist_key_ignores_case_punctuation_quotes(a, b):
    assert A.artist_key(a) == A.artist_key(b)


def test_artist_key_keeps_different_names_apart():
    assert A.artist_key("ABBA") != A.artist_key("ABC")


def test_read_tutorial_csv(tmp_path):
    path = tmp_path / "lmd_genres.csv"
    path.write_text(TUTORIAL_CSV)
    table = A.read_artist_csv(path)
    assert table.coarse
    assert table.get('"Weird Al" Yankovic') == "Other"
    assert table.get("amos tori") == "Alternative"
    assert table.get("Earth Wind and Fire") == "Funk"
    assert table.get("Nobody") is None
    assert len(table.genres) == 6


def test_read_plain_csv_and_errors(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("Artist,Genre\nABBA,europop\nNo Genre,\n")
    table = A.read_artist_csv(plain)
    assert not table.coarse
    assert table.genres == {"abba": "europop"}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,style\nABBA,pop\n")
    with pytest.raises(G.GenreError, match="expected columns"):
        A.read_artist_csv(bad)
    with pytest.raises(G.GenreError, match="cannot read"):
        A.read_artist_csv(tmp_path / "missing.csv")


# --- genre maps ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fine", "coarse"),
    [
        ("dance pop", "POP"),
        ("europop", "POP"),
        ("k-pop", "POP"),
        ("indie pop", "POP"),
        ("album rock", "ROCK"),
        ("classic rock", "ROCK"),
        ("indie rock", "ROCK"),
        ("post-punk", "ROCK"),
        ("pop punk", "PUNK"),
        ("alternative metal", "METAL"),
        ("pop rap", "HIP_HOP"),
        ("southern hip hop", "HIP_HOP"),
        ("trap", "HIP_HOP"),
        ("trip hop", "ELECTRONIC"),
        ("neo soul", "R_B_SOUL"),
        ("motown", "R_B_SOUL"),
        ("deep house", "ELECTRONIC"),
        ("techno", "ELECTRONIC"),
        ("bebop", "JAZZ"),
        ("chicago blues", "BLUES"),
        ("contemporary country", "COUNTRY"),
        ("indie folk", "FOLK"),
        ("baroque", "CLASSICAL"),
        ("roots reggae", "REGGAE"),
        ("reggaeton", "LATIN"),
        ("afrobeat", "WORLD"),
        ("orchestral soundtrack", "SOUNDTRACK"),
        ("p funk", "FUNK"),
        ("italo disco", "DISCO"),
        ("new age", "NEW_AGE"),
    ],
)
def test_default_map_groups_common_spotify_genres(fine, coarse):
    hit = G.load_genre_map().coarse(fine)
    assert hit is not None and hit[1] == coarse


def test_default_map_labels_are_token_safe_and_agree_with_tutorial():
    gmap = G.load_genre_map("default")
    labels = {r.genre for r in gmap.rules}
    assert all(g == V.normalize_genre(g) for g in labels)
    assert {"POP", "ROCK", "HIP_HOP", "R_B_SOUL", "JAZZ", "ELECTRONIC"} <= labels
    assert gmap.coarse("polka-dot nonsense xyz") is not None  # 'polka' is WORLD
    assert gmap.coarse("zzz") is None


def test_group_votes_then_prefers_the_earlier_rule():
    gmap = G.load_genre_map()
    assert gmap.group(["album rock", "classic rock", "dance pop"]) == "ROCK"
    assert gmap.group(["dance pop", "hard rock"]) == "ROCK"  # tie: ROCK's rule comes before POP's
    assert gmap.group(["zzz"]) is None
    assert gmap.group([]) is None


def test_custom_map_first_match_wins_and_contains_is_literal(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "- {pattern: '^pop rock$', genre: Pop Rock}\n"
        "- {contains: ['c++', 'rock'], genre: ROCK}\n"
        "- {pattern: [pop, dance], genre: pop}\n"
    )
    gmap = G.load_genre_map(path)
    assert gmap.coarse("pop rock") == (0, "POP_ROCK")
    assert gmap.coarse("c++ music") == (1, "ROCK")
    assert gmap.coarse("album rock") == (1, "ROCK")
    assert gmap.coarse("DANCE") == (2, "POP")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- {pattern: '(', genre: X}", "bad regular expression"),
        ("- {pattern: pop}", "needs 'genre'"),
        ("- {pattern: pop, contains: pop, genre: X}", "needs 'genre'"),
        ("pop: POP", "expected a list"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_bad_genre_maps(text, match):
    with pytest.raises(G.GenreError, match=match):
        G.parse_genre_map(text, "test map")


# --- labelling a collection ---------------------------------------------------------------------
def test_label_lmd_folder_with_tutorial_csv(tmp_path):
    midi = make_lmd(tmp_path / "lmd")
    (tmp_path / "lmd_genres.csv").write_text(TUTORIAL_CSV)
    out = tmp_path / "out" / "labels.csv"
    report = G.label_collection(midi, out, artist_csv=tmp_path / "lmd_genres.csv", group="default")
    labels = report.labels
    assert labels["ABBA/Dancing Queen.1.mid"] == "POP"
    assert labels['"Weird Al" Yankovic/Eat It.mid'] == "OTHER"
    assert labels["Amos, Tori/Cornflake Girl.mid"] == "ALTERNATIVE"  # coarse CSV labels: normalised only
    assert labels["Earth Wind and Fire/September.MID"] == "FUNK"
    assert labels["Eminem/Lose Yourself.mid"] == "HIP_HOP"
    assert labels["Unknown Band/Song.mid"] == "OTHER"
    assert labels["loose.mid"] == "OTHER"
    assert report.other_reasons == {"artist not in the CSV": 1, "file not in a sub-folder": 1}
    assert report.counts == {"POP": 2, "OTHER": 3, "ALTERNATIVE": 1, "FUNK": 1, "HIP_HOP": 1}
    assert read_genres_csv(out) == labels  # what `mmmgen prepare --genres` reads
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_plain_csv_fine_genres_are_grouped(tmp_path):
    midi = make_lmd(tmp_path / "lmd", ["ABBA/a.mid", "Eminem/b.mid", "Odd/c.mid"])
    csv_path = tmp_path / "artists.csv"
    csv_path.write_text("artist,genre\nABBA,dance pop\nEminem,detroit hip hop\nOdd,zzz music\n")
    report = G.label_collection(midi, artist_csv=csv_path, group="default")
    assert report.labels == {"ABBA/a.mid": "POP", "Eminem/b.mid": "HIP_HOP", "Odd/c.mid": "OTHER"}
    assert report.unmatched == {"zzz music": 1}
    assert "zzz music" in report.summary()
    ungrouped = G.label_collection(midi, artist_csv=csv_path)
    assert ungrouped.labels["ABBA/a.mid"] == "DANCE_POP"


def test_genre_from_folders(tmp_path):
    midi = make_lmd(tmp_path / "by_genre", ["Hip Hop/a.mid", "Hip Hop/b.mid", "dance pop/c.mid", "x.mid"])
    plain = G.label_collection(midi, from_folders="genre")
    assert plain.labels == {"Hip Hop/a.mid": "HIP_HOP", "Hip Hop/b.mid": "HIP_HOP", "dance pop/c.mid": "DANCE_POP", "x.mid": "OTHER"}
    grouped = G.label_collection(midi, from_folders="genre", group="default")
    assert grouped.labels["dance pop/c.mid"] == "POP"


def test_min_count_merges_rare_genres(tmp_path):
    midi = make_lmd(tmp_path / "g", ["Rock/1.mid", "Rock/2.mid", "Rock/3.mid", "Pop/1.mid", "Pop/2.mid", "Ska/1.mid"])
    report = G.label_collection(midi, from_folders="genre", min_count=2)
    assert report.counts == {"ROCK": 3, "POP": 2, "OTHER": 1}
    assert report.merged == {"SKA": 1}
    assert "merged into OTHER (fewer than 2 files): SKA 1" in report.summary()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "no genre source"),
        ({"from_folders": "artist"}, "needs --artist-csv"),
        ({"from_folders": "genre", "artist_csv": "x.csv"}, "cannot be combined"),
        ({"from_folders": "album"}, "must be one of"),
        ({"from_folders": "genre", "min_count": -1}, "--min-count"),
    ],
)
def test_bad_sources(tmp_path, kwargs, match):
    midi = make_lmd(tmp_path / "m", ["A/a.mid"])
    with pytest.raises(G.GenreError, match=match):
        G.label_collection(midi, **kwargs)


def test_no_midi_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(G.GenreError, match="no MIDI files"):
        G.label_collection(tmp_path / "empty", from_folders="genre")


def test_balance_report():
    text = G.format_balance({"OTHER": 5, "POP": 40, "ROCK": 20, "JAZZ": 1})
    lines = text.splitlines()
    assert lines[0].split() == ["genre", "files", "share"]
    assert [line.split()[0] for line in lines[1:]] == ["POP", "ROCK", "JAZZ", "OTHER"]
    assert lines[1].endswith("#" * 40) and "60.6%" in lines[1]
    assert lines[2].endswith(" " + "#" * 20)
    assert lines[3].endswith(" #")  # a non-empty genre always shows a bar
    assert G.format_balance({}) == "no files"


# --- Spotify ------------------------------------------------------------------------------------
def test_spotify_lookup_retries_caches_and_reports(tmp_path, spotify_server):
    base, state = spotify_server(
        {"ABBA": ["europop", "swedish pop"], "Eminem": ["detroit hip hop", "hip hop", "rap"], "Rate Limited": ["album rock"],
         "Flaky": ["bebop"], "Broken": ["pop"], "Nobody Knows": []},
        script={"Rate Limited": [429], "Flaky": [500], "Broken": [500] * 10},
    )
    midi = make_lmd(tmp_path / "lmd", ["ABBA/a.mid", "Eminem/b.mid", "Rate Limited/c.mid", "Flaky/d.mid",
                                       "Broken/e.mid", "Nobody Knows/f.mid", "Not On Spotify/g.mid"])
    out = tmp_path / "labels.csv"
    sleeps: list[float] = []
    report = G.label_collection(midi, out, spotify=make_client(base, sleeps), progress=False)
    assert report.labels == {
        "ABBA/a.mid": "POP", "Eminem/b.mid": "HIP_HOP", "Rate Limited/c.mid": "ROCK", "Flaky/d.mid": "JAZZ",
        "Broken/e.mid": "OTHER", "Nobody Knows/f.mid": "OTHER", "Not On Spotify/g.mid": "OTHER",
    }
    # artists in order: Broken (500 x3: backoff 1, 2, then gives up), Flaky (500: 1), Rate Limited (429: Retry-After 2)
    assert sleeps == [1.0, 2.0, 1.0, 2.0]
    assert state.tokens == 1
    assert report.other_reasons == {"Spotify lookup failed": 1, "no genre on Spotify": 2}
    assert list(report.spotify.failed) == ["Broken"] and "HTTP 500" in report.spotify.failed["Broken"]
    summary = report.summary()
    assert "Spotify: 7 artists, 0 from the cache, 7 requested, 1 failed" in summary
    assert "Broken: HTTP 500" in summary

    cache = json.loads((tmp_path / "labels.spotify-cache.json").read_text())["artists"]
    assert cache["abba"] == {"query": "ABBA", "match": "ABBA", "genres": ["europop", "swedish pop"]}
    assert cache["notonspotify"]["match"] is None and "broken" not in cache

    # A rerun asks only for the artist that failed; answers (even 'no hit') come from the cache.
    state.searches.clear()
    state.script["Broken"] = []
    again = G.label_collection(midi, out, spotify=make_client(base, []), progress=False)
    assert state.searches == ["Broken"]
    assert again.labels["Broken/e.mid"] == "POP"
    assert again.spotify.cached == 6
    state.searches.clear()
    G.label_collection(midi, out, spotify=make_client(base, []), progress=False)
    assert state.searches == []


def test_spelling_variants_of_an_artist_are_looked_up_once(spotify_server):
    base, state = spotify_server({"ABBA": ["europop"]})
    result = S.lookup_spotify(["ABBA", "Abba"], make_client(base, []), S.SpotifyCache(None), progress=False)
    assert state.searches == ["ABBA"] and result.genres == {"ABBA": ["europop"], "Abba": ["europop"]}


def test_spotify_csv_first_then_spotify(tmp_path, spotify_server):
    base, state = spotify_server({"Eminem": ["rap"]})
    midi = make_lmd(tmp_path / "lmd", ["ABBA/a.mid", "Eminem/b.mid"])
    (tmp_path / "artists.csv").write_text(TUTORIAL_CSV.replace("Eminem,Hip Hop,EMINEM\n", ""))
    report = G.label_collection(midi, artist_csv=tmp_path / "artists.csv", spotify=make_client(base, []),
                                cache=tmp_path / "c.json", progress=False)
    assert report.labels == {"ABBA/a.mid": "POP", "Eminem/b.mid": "HIP_HOP"}
    assert state.searches == ["Eminem"]


def test_retry_after_is_capped_and_quotes_dropped_from_query(spotify_server):
    base, state = spotify_server({"Weird Al Yankovic": ["comic"]}, script={"Weird Al Yankovic": [429]})
    state.retry_after = "86400"
    sleeps: list[float] = []
    client = make_client(base, sleeps, max_wait=5)
    assert client.search_artist('"Weird Al" Yankovic') == {"name": "Weird Al Yankovic", "id": "xWeird Al Yankovic", "genres": ["comic"]}
    assert sleeps == [5]


def test_consecutive_failures_stop_requests_but_not_the_run(tmp_path):
    import socket

    with socket.socket() as s:  # a free local port with nothing listening
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
    sleeps: list[float] = []
    client = make_client(base, sleeps, max_retries=1)
    names = [f"Artist {i}" for i in range(8)]
    result = S.lookup_spotify(names, client, S.SpotifyCache(None), progress=False, max_consecutive_failures=3)
    assert set(result.failed) == set(names)
    assert result.requested == 3 and client.requests == 6  # 3 artists x (1 try + 1 retry)
    assert sum("skipped after 3" in r for r in result.failed.values()) == 5
    assert sleeps == [1.0, 1.0, 1.0]


def test_missing_credentials_fail_before_any_request(tmp_path, spotify_server):
    base, state = spotify_server({})
    with pytest.raises(S.SpotifyAuthError, match="SPOTIFY_CLIENT_ID"):
        S.SpotifyClient.from_env({"MMMGEN_SPOTIFY_API_URL": base})
    assert state.tokens == 0 and state.searches == []


def test_rejected_credentials_stop_the_run(tmp_path, spotify_server):
    base, state = spotify_server({"ABBA": ["pop"]})
    client = S.SpotifyClient("id", "wrong", api_url=base, auth_url=base, sleep=lambda s: None)
    midi = make_lmd(tmp_path / "lmd", ["ABBA/a.mid"])
    with pytest.raises(S.SpotifyAuthError, match="rejected"):
        G.label_collection(midi, spotify=client, progress=False)
    assert state.searches == []


def test_expired_token_is_renewed(spotify_server):
    base, state = spotify_server({"ABBA": ["europop"]}, script={"ABBA": [401]})
    client = make_client(base, [])
    assert client.search_artist("ABBA")["genres"] == ["europop"]
    assert state.tokens == 2 and state.searches == ["ABBA", "ABBA"]


def test_interrupted_run_keeps_answers_so_far(tmp_path, spotify_server):
    base, state = spotify_server({"A": ["pop"], "B": ["rock"], "C": ["jazz"]}, script={"C": [500]})

    def interrupt(seconds):
        raise KeyboardInterrupt

    cache_path = tmp_path / "cache.json"
    with pytest.raises(KeyboardInterrupt):
        client = S.SpotifyClient("id", "secret", api_url=base, auth_url=base, sleep=interrupt)
        S.lookup_spotify(["A", "B", "C"], client, S.SpotifyCache(cache_path), progress=False)
    assert set(json.loads(cache_path.read_text())["artists"]) == {"a", "b"}
    assert [p.name for p in tmp_path.iterdir()] == ["cache.json"]  # no temp file left behind
    state.searches.clear()
    result = S.lookup_spotify(["A", "B", "C"], make_client(base, []), S.SpotifyCache(cache_path), progress=False)
    assert state.searches == ["C"] and result.genres == {"A": ["pop"], "B": ["rock"], "C": ["jazz"]}


def test_bad_cache_file_is_an_error(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    with pytest.raises(G.GenreError, match="unreadable"):
        S.SpotifyCache(path)


# --- the command --------------------------------------------------------------------------------
def test_cli_artist_csv(tmp_path, capsys):
    midi = make_lmd(tmp_path / "lmd")
    (tmp_path / "lmd_genres.csv").write_text(TUTORIAL_CSV)
    out = tmp_path / "labels.csv"
    code = main(["genres", str(midi), "--out", str(out), "--artist-csv", str(tmp_path / "lmd_genres.csv"), "--min-count", "2"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "8 MIDI files" in printed and "POP" in printed and "#" in printed
    assert "merged into OTHER" in printed
    assert read_genres_csv(out)["ABBA/Waterloo.mid"] == "POP"


def test_cli_spotify(tmp_path, capsys, monkeypatch, spotify_server):
    base, _ = spotify_server({"ABBA": ["europop"], "Eminem": ["rap"]})
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "id")
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "secret")
    monkeypatch.setenv("MMMGEN_SPOTIFY_API_URL", base)
    monkeypatch.setenv("MMMGEN_SPOTIFY_AUTH_URL", base)
    midi = make_lmd(tmp_path / "lmd", ["ABBA/a.mid", "Eminem/b.mid"])
    out = tmp_path / "labels.csv"
    assert main(["genres", str(midi), "--out", str(out), "--spotify", "--cache", str(tmp_path / "c.json")]) == 0
    assert read_genres_csv(out) == {"ABBA/a.mid": "POP", "Eminem/b.mid": "HIP_HOP"}
    assert (tmp_path / "c.json").is_file()
    assert "Spotify: 2 artists" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--spotify"], "SPOTIFY_CLIENT_ID"),
        ([], "no genre source"),
        (["--from-folders", "genre", "--group", "missing.yaml"], "cannot read genre map"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, match):
    midi = make_lmd(tmp_path / "lmd", ["A/a.mid"])
    assert main(["genres", str(midi), "--out", str(tmp_path / "l.csv"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert not (tmp_path / "l.csv").exists()


# --- the real tutorial CSV (optional) -----------------------------------------------------------
@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/midi-dev/lmd_clean_style is absent")
def test_shared_lmd_clean_style(tmp_path):
    out = tmp_path / "labels.csv"
    report = G.label_collection(SHARED, out, artist_csv=SHARED / "lmd_genres.csv")
    assert len(report.labels) >= 3
    assert all(src.startswith("ABBA/") and genre == "POP" for src, genre in report.labels.items())
    table = A.read_artist_csv(SHARED / "lmd_genres.csv")
    assert table.coarse and len(table.genres) > 1800
    assert table.get("Weird Al Yankovic") == "Other"
    assert read_genres_csv(out) == report.labels
