"""Spotify artist lookups for ``mmmgen genres``: a retrying urllib client and a JSON cache."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

from mmmgen.data.artists import GenreError, artist_key, write_atomic

log = logging.getLogger(__name__)

SPOTIFY_API_URL = "https://api.spotify.com"
SPOTIFY_AUTH_URL = "https://accounts.spotify.com"


class SpotifyAuthError(GenreError):
    """Missing or rejected Spotify client credentials (stops the run before any lookup)."""


class SpotifyError(Exception):
    """A lookup that still failed after its retries; reported per artist, never fatal."""


def _retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return default


class SpotifyClient:
    """Spotify Web API search with the client-credentials flow, using only ``urllib``.

    Network errors and 5xx answers are retried with exponential backoff; HTTP 429 waits for its
    ``Retry-After`` (capped at ``max_wait``). ``sleep`` is injectable so tests run fast;
    ``requests`` counts HTTP requests made.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_url: str | None = None,
        auth_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not client_id or not client_secret:
            msg = "--spotify needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (a Spotify app's client credentials) in the environment"
            raise SpotifyAuthError(msg)
        self.client_id, self.client_secret = client_id, client_secret
        self.api_url = (api_url or os.environ.get("MMMGEN_SPOTIFY_API_URL") or SPOTIFY_API_URL).rstrip("/")
        self.auth_url = (auth_url or os.environ.get("MMMGEN_SPOTIFY_AUTH_URL") or SPOTIFY_AUTH_URL).rstrip("/")
        self.timeout, self.max_retries, self.backoff, self.max_wait = timeout, max_retries, backoff, max_wait
        self.sleep = sleep
        self.requests = 0
        self._token: str | None = None
        self._token_expires = 0.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kwargs) -> SpotifyClient:
        """A client from ``SPOTIFY_CLIENT_ID``/``SPOTIFY_CLIENT_SECRET`` and the optional
        ``MMMGEN_SPOTIFY_API_URL``/``MMMGEN_SPOTIFY_AUTH_URL``; raises ``SpotifyAuthError`` first."""
        env = dict(os.environ) if env is None else env
        kwargs.setdefault("api_url", env.get("MMMGEN_SPOTIFY_API_URL"))
        kwargs.setdefault("auth_url", env.get("MMMGEN_SPOTIFY_AUTH_URL"))
        return cls(env.get("SPOTIFY_CLIENT_ID", ""), env.get("SPOTIFY_CLIENT_SECRET", ""), **kwargs)

    def _call(self, make_request: Callable[[], urllib.request.Request], token: bool = False) -> dict:
        failures, reauthorized = 0, False
        while True:
            try:
                request = make_request()
                self.requests += 1
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read().decode("utf-8"))
                if not isinstance(answer, dict):
                    raise ValueError("answer is not a JSON object")
                return answer
            except urllib.error.HTTPError as exc:
                exc.close()
                wait = None
                if exc.code == 429:
                    wait = min(_retry_after(exc.headers.get("Retry-After"), self.backoff), self.max_wait)
                elif token and exc.code in (400, 401, 403):
                    msg = f"Spotify rejected the client credentials (HTTP {exc.code}); check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"
                    raise SpotifyAuthError(msg) from exc
                elif exc.code == 401 and not reauthorized:  # expired token: fetch a new one
                    self._token, reauthorized = None, True
                    continue
                elif exc.code < 500:
                    msg = f"HTTP {exc.code} {exc.reason}"
                    raise SpotifyError(msg) from exc
                reason = f"HTTP {exc.code}"
            except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, timeout, bad JSON
                wait, reason = None, str(getattr(exc, "reason", exc)) or type(exc).__name__
            failures += 1
            if failures > self.max_retries:
                msg = f"{reason} (gave up after {failures} attempts)"
                raise SpotifyError(msg)
            wait = self.backoff * 2 ** (failures - 1) if wait is None else wait
            log.debug("Spotify: %s; retrying in %.1f s", reason, wait)
            self.sleep(wait)

    def _bearer(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expires:
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            body = urllib.parse.urlencode({"grant_type": "client_credentials"}).encode()
            headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
            answer = self._call(lambda: urllib.request.Request(f"{self.auth_url}/api/token", body, headers), token=True)
            if not answer.get("access_token"):
                msg = "Spotify token answer without access_token"
                raise SpotifyError(msg)
            self._token = str(answer["access_token"])
            self._token_expires = time.monotonic() + float(answer.get("expires_in", 3600)) - 60
        return self._token

    def search_artist(self, name: str) -> dict | None:
        """The top search hit for ``name`` as ``{'name', 'id', 'genres'}``, or None without a hit.

        Raises:
            SpotifyError: when the request still fails after the retries.
            SpotifyAuthError: when the credentials are rejected.
        """
        query = " ".join(name.replace('"', " ").split())
        params = urllib.parse.urlencode({"q": f"artist:{query}", "type": "artist", "limit": 1})
        url = f"{self.api_url}/v1/search?{params}"
        answer = self._call(lambda: urllib.request.Request(url, headers={"Authorization": f"Bearer {self._bearer()}"}))
        items = (answer.get("artists") or {}).get("items") or []
        if not items:
            return None
        top = items[0]
        return {"name": top.get("name"), "id": top.get("id"), "genres": [str(g) for g in top.get("genres") or []]}


class SpotifyCache:
    """Spotify answers by artist key in a JSON file (or memory only when ``path`` is None)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = {}
        if self.path and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text(encoding="utf-8"))["artists"]
            except (ValueError, KeyError, TypeError) as exc:
                msg = f"Spotify cache {self.path} is unreadable ({exc}); delete it to start afresh"
                raise GenreError(msg) from exc

    def get(self, artist: str) -> dict | None:
        """The cached answer ``{'query', 'match', 'genres'}`` for ``artist``, or None."""
        return self.entries.get(artist_key(artist))

    def put(self, artist: str, answer: dict | None) -> None:
        """Store an answer (None: no hit) and rewrite the file atomically."""
        self.entries[artist_key(artist)] = {
            "query": artist,
            "match": answer["name"] if answer else None,
            "genres": answer["genres"] if answer else [],
        }
        if self.path:
            write_atomic(self.path, json.dumps({"version": 1, "artists": self.entries}, indent=1, ensure_ascii=False))


@dataclass
class SpotifyLookup:
    """Genres found per artist, failures per artist, and how many came from the cache."""

    genres: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    artists: int = 0
    cached: int = 0
    requested: int = 0


def lookup_spotify(
    artists: Sequence[str],
    client: SpotifyClient,
    cache: SpotifyCache,
    *,
    progress: bool = True,
    max_consecutive_failures: int = 5,
) -> SpotifyLookup:
    """Look each artist up (cache first). Failures are recorded, never raised; after
    ``max_consecutive_failures`` in a row (network down) the rest are skipped as failed."""
    from tqdm.auto import tqdm

    result = SpotifyLookup(artists=len(artists))
    todo = []
    for name in artists:
        hit = cache.get(name)
        if hit is None:
            todo.append(name)
        else:
            result.genres[name] = list(hit.get("genres") or [])
    result.cached = len(artists) - len(todo)
    streak = 0
    for name in tqdm(todo, desc="Spotify lookups", unit="artist", disable=None if progress else True, file=sys.stderr):
        if streak >= max_consecutive_failures:
            result.failed[name] = f"skipped after {streak} failed lookups in a row"
            continue
        hit = cache.get(name)  # a spelling variant of an artist answered meanwhile
        if hit is not None:
            result.genres[name], result.cached = list(hit.get("genres") or []), result.cached + 1
            continue
        result.requested += 1
        try:
            answer = client.search_artist(name)
        except SpotifyError as exc:
            streak += 1
            result.failed[name] = str(exc)
            log.warning("Spotify lookup of %r failed: %s", name, exc)
            continue
        streak = 0
        cache.put(name, answer)
        result.genres[name] = answer["genres"] if answer else []
    return result
