"""Open collections beside music21's corpus: ``mmmgen corpus --collections groove,lmd-beatles,...``.

Four openly licensed collections (``OPEN``) widen what a model learns: human drum-kit performances
(GROOVE), band arrangements with bass and drums (LMD-BEATLES), lead sheets with chord symbols
(OPENEWLD) and folk tunes with chord accompaniment (NOTTINGHAM). Each has a :class:`Collection`
spec: where it comes from (a GitHub repository pinned to a commit), its genre label, its licence,
the attribution a model card must carry, and whether shipped weights may be trained on it
(NOTTINGHAM is GPL-3.0: develop and evaluate with it, do not train weights you ship on it).

``locate(name, from_dir, cache)`` finds a collection's files:

* ``from_dir`` given: ``from_dir/<folder>`` (a local copy in the layout of ``../shared/corpora``).
* else: the pinned archive is downloaded into ``cache`` (``fetch``), its folder is unpacked and
  normalised into that same layout (``normalise``: the Lakh files' ``.midN`` -> ``.N.mid``; the
  Nottingham melody and chord files merged into one two-track file).

Either way the copy is checked against the spec's ``sha256``, a *tree digest* (``tree_digest``: the
SHA-256 of one line ``sha256(bytes)  relative/path`` per music file, sorted). A content digest
rather than the archive's own hash, because GitHub does not promise byte-stable archives, and because
it pins what a model was trained on, whichever way the files arrived. A downloaded copy that does not
match raises :class:`ChecksumError`; a local copy that does not match is logged (it may be a newer or
a trimmed copy) unless ``strict``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

MUSIC_FILE = re.compile(r".+\.(mid|midi)\d*|.+\.(mxl|xml|musicxml)", re.IGNORECASE)  # .mid0: a Lakh version


class ChecksumError(MMMGenError):
    """A collection whose files do not have the pinned checksum (a corrupt or changed download)."""


class DownloadError(MMMGenError):
    """A collection that cannot be fetched (no network, a bad archive) or located."""


@dataclass(frozen=True)
class Collection:
    """One open collection: what it is, where it comes from, and what its licence allows."""

    name: str  # canonical name and output folder (GROOVE)
    folder: str  # the folder of a local copy (groove), as in ../shared/corpora
    genre: str  # its label in genres.csv
    licence: str
    trainable: bool  # may shipped weights be trained on it?
    attribution: str
    repo: str  # GitHub owner/name
    commit: str  # pinned commit
    subdir: str  # the collection's folder inside the repository
    sha256: str | None  # of tree_digest(normalised copy); None: not pinned (downloads refused)
    kind: str = "midi"  # midi: copied; leadsheet: MusicXML melody + chord symbols -> two MIDI tracks
    aliases: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The pinned commit's archive."""
        return f"https://codeload.github.com/{self.repo}/tar.gz/{self.commit}"


# The digests are those of the copies in ../shared/corpora (the files the default model v2 is built
# from). The archives themselves were never fetched where this was written (no network there): the
# first download through this code checks the normalising (Lakh renames) against them. NOTTINGHAM's
# copy was merged by another tool than _merge_nottingham, so its files cannot match: no pin.
OPEN: dict[str, Collection] = {c.name: c for c in (
    Collection(
        "GROOVE", "groove", "DRUMS", "CC BY 4.0", True,
        "Groove MIDI Dataset, Jon Gillick, Adam Roberts, Jesse Engel, Douglas Eck, David Bamman: \"Learning to "
        "Groove with Inverse Sequence Transformations\", ICML 2019 (magenta.tensorflow.org/datasets/groove), CC BY 4.0",
        "zharry29/drums-with-llm", "bf5ea0a3344d6c3cc5c4651930ae12ab2d7d1a1b", "groove",
        "25f1d0bc4b1d4ac3b657d320e1d90466b67e20fdf7bc3fb98000cd695cfad25b", aliases=("DRUMS", "GMD")),
    Collection(
        "LMD-BEATLES", "lmd-beatles", "ROCK", "CC BY 4.0", True,
        "Lakh MIDI Dataset (LMD-full), Colin Raffel: \"Learning-Based Methods for Comparing Sequences, with "
        "Applications to Audio-to-MIDI Alignment and Matching\", PhD thesis, 2016 (colinraffel.com/projects/lmd), "
        "CC BY 4.0; the Beatles files of craffel/midi-ground-truth. The compositions are not public domain.",
        "craffel/midi-ground-truth", "bb74f045d8c76fa588c5d096042b0063b3ff2454", "data/mid",
        "27fb4ee8c1de9984f6f2b4ddc57ccd6e839b41279863ad693507ccd0543b34e2", aliases=("BEATLES", "LMD")),
    Collection(
        "OPENEWLD", "openewld", "STANDARDS", "MIT (scores: public domain)", True,
        "OpenEWLD, Federico Simonetta, Filippo Carnovalini, Nicola Orio, Antonio Rodà: \"Symbolic Music Similarity "
        "through a Graph-Based Representation\", Audio Mostly 2018 (github.com/00sapo/OpenEWLD), MIT",
        "00sapo/OpenEWLD", "9bbb6d292c96c9ab2dee64b7ff5cdba60612b7a0", "dataset",
        "078c286d5364b18b8aae70d9619af42e6855c32a7b25179788456c5bde32440a", kind="leadsheet", aliases=("EWLD",)),
    Collection(
        "NOTTINGHAM", "nottingham", "FOLK", "GPL-3.0", False,
        "Nottingham Music Database (Eric Foxley), cleaned by Jukedeck (github.com/jukedeck/nottingham-dataset), GPL-3.0",
        "jukedeck/nottingham-dataset", "bcb2afc67d291acdd689ed0c22ab2a8a480f38a6", "MIDI",
        None, aliases=("NMD",)),
)}


def resolve(name: str) -> str | None:
    """The canonical name of an open collection named ``name`` (case-insensitive, aliases), or None."""
    key = name.strip().upper().replace("_", "-")
    for c in OPEN.values():
        if key == c.name or key == c.folder.upper() or key in c.aliases:
            return c.name
    return None


# --- checksums ----------------------------------------------------------------------------------
def music_files(root: Path) -> list[Path]:
    """The music files under ``root`` (MIDI, MusicXML), sorted by relative path."""
    found = [p for p in root.rglob("*") if MUSIC_FILE.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def tree_digest(root: str | Path) -> str:
    """SHA-256 over ``sha256(bytes)  relative/path`` lines of every music file under ``root``."""
    root, outer = Path(root), hashlib.sha256()
    for path in music_files(root):
        inner = hashlib.sha256(path.read_bytes()).hexdigest()
        outer.update(f"{inner}  {path.relative_to(root).as_posix()}\n".encode())
    return outer.hexdigest()


def verify(root: Path, expected: str | None, what: str, strict: bool = True) -> str:
    """Check the tree digest of ``root``; raise :class:`ChecksumError` (``strict``) or log a mismatch."""
    got = tree_digest(root)
    if expected and got != expected:
        msg = f"{what}: checksum mismatch (sha256 {got}, expected {expected}): the files differ from the pinned copy"
        if strict:
            raise ChecksumError(msg)
        log.warning("%s (using them anyway: a local copy)", msg)
    return got


# --- download -----------------------------------------------------------------------------------
def fetch(url: str, dest: Path, timeout: float = 60) -> Path:
    """Download ``url`` (http(s) or file://) to ``dest`` atomically; raises :class:`DownloadError`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        os.replace(tmp, dest)
    except OSError as exc:  # URLError is an OSError
        msg = f"cannot download {url}: {getattr(exc, 'reason', None) or exc} (no network? pass --from DIR with a local copy)"
        raise DownloadError(msg) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def unpack(archive: Path, out: Path) -> Path:
    """Unpack a .zip or .tar(.gz) archive into ``out`` (members escaping it refused); returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    if not (out / member).resolve().is_relative_to(out.resolve()):
                        msg = f"{archive}: member {member!r} escapes the folder"
                        raise DownloadError(msg)
                z.extractall(out)
        else:
            with tarfile.open(archive) as t:
                t.extractall(out, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        msg = f"{archive}: not a readable archive ({exc})"
        raise DownloadError(msg) from exc
    return out


def _top(folder: Path) -> Path:
    """A GitHub archive holds one folder ``repo-commit/``: step into it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def normalise(spec: Collection, src: Path, dest: Path) -> None:
    """The collection's folder of an unpacked archive -> the local-copy layout at ``dest``."""
    if spec.name == "NOTTINGHAM":
        return _merge_nottingham(src, dest)
    for path in music_files(src):
        rel = path.relative_to(src).as_posix()
        if spec.name == "LMD-BEATLES":  # Song.mid0 / Song.mid.0 -> Song.0.mid
            rel = re.sub(r"\.mid\.?(\d+)$", r".\1.mid", rel)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for extra in ("LICENSE", "LICENSE.md", "README", "info.csv"):  # licence and metadata beside the music
        if (src / extra).is_file():
            shutil.copyfile(src / extra, dest / extra)


def _merge_nottingham(src: Path, dest: Path) -> None:
    """``melody/X.mid`` + ``chords/X.mid`` -> ``midi/X.mid`` with tracks ``melody`` (73) and ``chords`` (0)."""
    import symusic

    (dest / "midi").mkdir(parents=True, exist_ok=True)
    for melody in sorted((src / "melody").glob("*.mid")):
        score = symusic.Score(str(melody))
        chords_file = src / "chords" / melody.name
        parts = [(score, "melody", 73)]
        if chords_file.is_file():
            parts.append((symusic.Score(str(chords_file)).resample(score.ticks_per_quarter), "chords", 0))
        tracks = []
        for part, name, program in parts:
            for track in part.tracks:
                if len(track.notes):
                    track.name, track.program = name, program
                    tracks.append(track)
                    break
        score.tracks = tracks
        score.dump_midi(str(dest / "midi" / melody.name))


def download(spec: Collection, cache: Path, url: str | None = None, allow_unpinned: bool = False) -> Path:
    """The normalised, verified copy of ``spec`` under ``cache`` (downloaded once; reused when it verifies).

    Raises:
        DownloadError: no network or a bad archive. ChecksumError: the files are not the pinned ones,
        or the collection has no pinned checksum and ``allow_unpinned`` is false.
    """
    if spec.sha256 is None and not allow_unpinned:
        msg = (f"{spec.name}: no pinned checksum in this version of mmmgen, so a download cannot be verified; "
               f"pass --from DIR with a copy you trust, or --allow-unpinned")
        raise ChecksumError(msg)
    ready = cache / spec.folder
    if ready.is_dir() and (spec.sha256 is None or tree_digest(ready) == spec.sha256):
        return ready
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        archive = fetch(url or spec.url, Path(tmp) / "archive")
        src = _top(unpack(archive, Path(tmp) / "unpacked")) / spec.subdir
        if not src.is_dir():
            msg = f"{spec.name}: the archive has no folder {spec.subdir}/"
            raise DownloadError(msg)
        staged = Path(tmp) / "normalised"
        normalise(spec, src, staged)
        verify(staged, spec.sha256, f"{spec.name} from {url or spec.url}")
        shutil.rmtree(ready, ignore_errors=True)
        shutil.move(str(staged), ready)
    return ready


def locate(name: str, from_dir: str | Path | None, cache: str | Path, url: str | None = None,
           allow_unpinned: bool = False, strict: bool = False) -> tuple[Path, str]:
    """``(folder, tree digest)`` of collection ``name``: ``from_dir/<folder>`` or a verified download in ``cache``."""
    spec = OPEN[name]
    if from_dir is None:
        root = download(spec, Path(cache), url, allow_unpinned)
        return root, spec.sha256 or tree_digest(root)
    root = Path(from_dir) / spec.folder
    if not root.is_dir():
        msg = f"{spec.name}: no folder {root} (the local copy needs the layout of the corpora README)"
        raise DownloadError(msg)
    return root, verify(root, spec.sha256, f"{spec.name} in {root}", strict=strict)


# --- export (``corpus.export_corpus`` runs these for the open collections) ----------------------
LEADSHEET_PROGRAMS = {"melody": 73, "chords": 0}  # Flute and Acoustic Grand, as the Nottingham MIDI files


def open_works(name: str, root: Path) -> list[tuple[str, str, str]]:
    """``(work_id, source file, output path relative to the corpus)`` for every music file of ``root``."""
    works = []
    for path in music_files(root):
        rel = path.relative_to(root).as_posix()
        out = rel if path.suffix.lower() in (".mid", ".midi") else str(Path(rel).with_suffix(".mid").as_posix())
        works.append((f"{name}/{rel}", str(path), f"{name}/{out}"))
    return works


def leadsheet_score(score):
    """A lead sheet (melody + chord symbols) -> a score of two parts: ``melody`` and ``chords``, the
    chord symbols sounded as block chords (root position, as music21 voices them) from each symbol
    to the next, struck again at every bar line; ``N.C.`` ends a chord."""
    import copy

    from music21 import chord, harmony, note, stream

    if isinstance(score, stream.Opus):
        score = score.scores.first()
    melody = score.parts[0] if score.parts else score
    comp = copy.deepcopy(melody)
    current = None
    for measure in comp.getElementsByClass(stream.Measure):
        symbols = sorted(((float(h.offset), h) for h in measure.getElementsByClass(harmony.ChordSymbol)), key=lambda x: x[0])
        for el in list(measure.recurse().getElementsByClass((note.GeneralNote, harmony.Harmony))):
            el.activeSite.remove(el)
        for voice in list(measure.voices):
            measure.remove(voice)
        length = float(measure.barDuration.quarterLength) if measure.barDuration else float(measure.highestTime)
        events = [(0.0, current)] if current is not None and (not symbols or symbols[0][0] > 0) else []
        for offset, symbol in symbols:  # (offsets read before the symbols were taken out of the measure)
            current = None if isinstance(symbol, harmony.NoChord) or not symbol.pitches else tuple(symbol.pitches)
            events.append((offset, current))
        for (start, pitches), (end, _) in zip(events, [*events[1:], (length, None)][: len(events)], strict=True):
            if pitches and end > start:
                measure.insert(start, chord.Chord(list(pitches), quarterLength=end - start))
    out = stream.Score()
    melody.partName, comp.partName = "melody", "chords"
    out.insert(0, melody)
    if comp.recurse().notes:
        out.insert(0, comp)
    return out


SOURCES = "sources.json"  # beside genres.csv: what each open collection is, its licence and attribution


def write_sources(out: Path, names: list[str]) -> None:
    """Record the open collections of a corpus folder in ``out/sources.json`` (merged with earlier runs)."""
    import json

    path = Path(out) / SOURCES
    known = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        spec = OPEN[name]
        known[name] = {"genre": spec.genre, "licence": spec.licence, "trainable": spec.trainable,
                       "attribution": spec.attribution, "source": f"github.com/{spec.repo}/tree/{spec.commit}/{spec.subdir}",
                       "sha256": spec.sha256}
    if known:
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")


def data_card(corpus_dir: str | Path, genres: list[str] | None = None) -> str:
    """Markdown for a model card: the collections a corpus folder holds, with licences and attribution.

    ``genres``: the genre labels the model was trained on (its ``mmmgen.json``): collections whose
    genre is not among them are left out (they were not trained on).
    """
    import json

    path = Path(corpus_dir) / SOURCES
    known = json.loads(path.read_text()) if path.is_file() else {}
    lines = ["| collection | genre | licence | source |", "|---|---|---|---|",
             "| music21 corpus (BACH, PALESTRINA, MONTEVERDI, CLASSICAL, FOLK, CELTIC) | by collection | "
             "public domain (music21's corpus: BSD-3-Clause) | music21 |"]
    rows, credits = [], []
    for name, info in sorted(known.items()):
        if genres is not None and info["genre"] not in genres:
            continue
        rows.append(f"| {name} | {info['genre']} | {info['licence']} | {info['source']} |")
        credits.append(f"- {name}: {info['attribution']}")
        if not info["trainable"]:
            credits.append(f"  (WARNING: {info['licence']}: weights trained on {name} are bound by its licence)")
    return "\n".join([*lines, *rows, "", "Attribution:", "", *credits]) if rows else "\n".join(lines)


def song_key(name: str, rel: str) -> str:
    """The song a corpus file is one version of ('' when it is its own song): ``genres.csv``'s ``song``
    column, by which ``prepare`` splits.

    * LMD-BEATLES: the versions of a song, ``Song.0.mid``, ``Song.1.mid`` -> ``.../Song``.
    * GROOVE: the takes of one groove in one session (``103_funk_95_fill_4-4.mid``,
      ``104_funk_95_fill_4-4.mid``: the same drummer, style and tempo, near copies) ->
      ``.../session1/funk_95_fill_4-4``. (Its ``info.csv`` split, by take, is not used.)
    """
    pattern = {"LMD-BEATLES": r"(.+)\.\d+\.mid", "GROOVE": r"(.+/)\d+_(.+)\.mid"}.get(name)
    match = re.fullmatch(pattern, rel) if pattern else None
    return "".join(match.groups()) if match else ""
