"""A small SoundFont 2 player in numpy: the pure-pip audio fallback when FluidSynth is absent.

It reads an ``.sf2`` (the ``TimGM6mb.sf2`` inside the ``pretty_midi`` wheel, or any GM
SoundFont), finds each note's sample zones (preset -> instrument -> sample, key and velocity
ranges, tuning, loops, attenuation, pan) and plays them with the SoundFont's volume envelope
(delay, attack, hold, decay, sustain, release). Filters, LFOs, modulators other than the
velocity curve, reverb and chorus are left out: it is a faithful preview, not FluidSynth.

Sample data is memory-mapped, so even a 150 MB SoundFont costs nothing until a note uses it.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# generator numbers of the SoundFont 2.04 specification (section 8.1.2)
_START, _END, _START_LOOP, _END_LOOP = 0, 1, 2, 3
_START_COARSE, _END_COARSE, _START_LOOP_COARSE, _END_LOOP_COARSE = 4, 12, 45, 50
_PAN = 17
_DELAY, _ATTACK, _HOLD, _DECAY, _SUSTAIN, _RELEASE = 33, 34, 35, 36, 37, 38
_KEY_TO_HOLD, _KEY_TO_DECAY = 39, 40
_INSTRUMENT, _KEY_RANGE, _VEL_RANGE = 41, 43, 44
_KEYNUM, _VELOCITY, _ATTENUATION = 46, 47, 48
_COARSE_TUNE, _FINE_TUNE, _SAMPLE_ID, _SAMPLE_MODES = 51, 52, 53, 54
_SCALE_TUNING, _EXCLUSIVE, _ROOT_KEY = 56, 57, 58

_SIGNED = {
    _START, _END, _START_LOOP, _END_LOOP, _START_COARSE, _END_COARSE, _START_LOOP_COARSE,
    _END_LOOP_COARSE, _PAN, _DELAY, _ATTACK, _HOLD, _DECAY, _RELEASE, _KEY_TO_HOLD,
    _KEY_TO_DECAY, _COARSE_TUNE, _FINE_TUNE, _SCALE_TUNING, _ROOT_KEY, _KEYNUM, _VELOCITY,
}  # fmt: skip
# generators a preset zone may add to its instrument's (all but ranges, addresses and modes)
_NOT_ADDITIVE = {
    _START, _END, _START_LOOP, _END_LOOP, _START_COARSE, _END_COARSE, _START_LOOP_COARSE,
    _END_LOOP_COARSE, _INSTRUMENT, _KEY_RANGE, _VEL_RANGE, _KEYNUM, _VELOCITY, _SAMPLE_ID,
    _SAMPLE_MODES, _EXCLUSIVE, _ROOT_KEY,
}  # fmt: skip
_DEFAULTS = {_DELAY: -12000, _ATTACK: -12000, _HOLD: -12000, _DECAY: -12000, _RELEASE: -12000,
             _SCALE_TUNING: 100, _ROOT_KEY: -1, _KEYNUM: -1, _VELOCITY: -1}  # fmt: skip
_MAX_RELEASE_S = 3.0
_SILENT_CB = 720.0  # -72 dB: a voice this quiet has ended
_CONTROL = 32  # samples per envelope value

_PHDR = np.dtype([("name", "S20"), ("preset", "<u2"), ("bank", "<u2"), ("bag", "<u2"), ("lib", "<u4"), ("genre", "<u4"), ("morph", "<u4")])
_BAG = np.dtype([("gen", "<u2"), ("mod", "<u2")])
_GEN = np.dtype([("oper", "<u2"), ("amount", "<u2")])
_INST = np.dtype([("name", "S20"), ("bag", "<u2")])
_SHDR = np.dtype([("name", "S20"), ("start", "<u4"), ("end", "<u4"), ("sloop", "<u4"), ("eloop", "<u4"),
                  ("rate", "<u4"), ("key", "u1"), ("corr", "i1"), ("link", "<u2"), ("type", "<u2")])  # fmt: skip


class SoundFontError(ValueError):
    """The file is not a SoundFont 2 this player can read."""


@dataclass
class Region:
    """One sample zone of a preset, generators merged: what playing a note needs."""

    keys: tuple[int, int]
    vels: tuple[int, int]
    sample: int  # index into the sample headers
    start: int
    end: int
    loop_start: int
    loop_end: int
    looped: bool
    rate: int
    root: int
    tune_cents: float
    scale_tuning: float
    gain: float  # amplitude from initialAttenuation
    pan: float  # -0.5 (left) .. 0.5 (right)
    delay: float
    attack: float
    hold: float
    decay: float
    sustain: float  # amplitude of the sustain level
    release: float
    key_to_hold: float
    key_to_decay: float


def _timecents(value: float) -> float:
    return 0.0 if value <= -12000 else 2.0 ** (value / 1200.0)


def _sustain_cb(region: Region) -> float:
    return -200.0 * math.log10(max(region.sustain, 1e-10))


def _signed(oper: int, raw: int) -> int:
    return raw - 65536 if oper in _SIGNED and raw >= 32768 else raw


def _range(raw: int) -> tuple[int, int]:
    return raw & 0xFF, (raw >> 8) & 0xFF


class SoundFont:
    """A parsed SoundFont 2 file; ``render`` plays notes with it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = self.path.read_bytes() if self.path.stat().st_size < 4 << 20 else None
        self._read(data)
        self._regions: dict[tuple[int, int], list[Region]] = {}
        self._sample_cache: dict[tuple[int, int], np.ndarray] = {}

    # --- parsing ---------------------------------------------------------------------------
    def _read(self, data: bytes | None) -> None:
        with self.path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
                msg = f"{self.path} is not a SoundFont 2 (.sf2) file"
                raise SoundFontError(msg)
            size = struct.unpack("<I", head[4:8])[0] + 8
            pdta: dict[bytes, bytes] = {}
            smpl = None
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, csize = struct.unpack("<4sI", f.read(8))
                if cid == b"LIST":
                    kind = f.read(4)
                    sub, end = pos + 12, pos + 8 + csize
                    while sub + 8 <= end:
                        f.seek(sub)
                        sid, ssize = struct.unpack("<4sI", f.read(8))
                        if kind == b"sdta" and sid == b"smpl":
                            smpl = (sub + 8, ssize)
                        elif kind == b"pdta":
                            pdta[sid] = f.read(ssize)
                        sub += 8 + ssize + (ssize & 1)
                pos += 8 + csize + (csize & 1)
        needed = (b"phdr", b"pbag", b"pgen", b"inst", b"ibag", b"igen", b"shdr")
        if smpl is None or any(k not in pdta for k in needed):
            msg = f"{self.path}: incomplete SoundFont (missing sample data or preset tables)"
            raise SoundFontError(msg)
        if smpl[0] + smpl[1] > self.path.stat().st_size:
            msg = f"{self.path}: truncated SoundFont"
            raise SoundFontError(msg)
        offset, nbytes = smpl
        if data is not None:
            self.samples = np.frombuffer(data, "<i2", count=nbytes // 2, offset=offset)
        else:
            self.samples = np.memmap(self.path, "<i2", mode="r", offset=offset, shape=(nbytes // 2,))
        self.phdr = np.frombuffer(pdta[b"phdr"], _PHDR)
        self.pbag = np.frombuffer(pdta[b"pbag"], _BAG)
        self.pgen = np.frombuffer(pdta[b"pgen"], _GEN)
        self.inst = np.frombuffer(pdta[b"inst"], _INST)
        self.ibag = np.frombuffer(pdta[b"ibag"], _BAG)
        self.igen = np.frombuffer(pdta[b"igen"], _GEN)
        self.shdr = np.frombuffer(pdta[b"shdr"], _SHDR)
        self.presets = {(int(p["bank"]), int(p["preset"])): i for i, p in enumerate(self.phdr[:-1])}

    @staticmethod
    def _zones(headers, bags, gens, index: int, last_gen: int) -> tuple[dict, list[dict]]:
        """The global zone and the other zones of a preset or instrument, as ``{gen: raw}``."""
        b0, b1 = int(headers[index]["bag"]), int(headers[index + 1]["bag"])
        zones = []
        for b in range(b0, min(b1, len(bags) - 1)):
            g0, g1 = int(bags[b]["gen"]), int(bags[b + 1]["gen"])
            zones.append({int(g["oper"]): int(g["amount"]) for g in gens[g0:g1]})
        glob: dict = {}
        if zones and last_gen not in zones[0]:
            glob = zones.pop(0)
        return glob, [z for z in zones if last_gen in z]

    def regions(self, bank: int, program: int) -> list[Region]:
        """The sample regions of a preset (cached)."""
        key = (bank, program)
        if key not in self._regions:
            self._regions[key] = self._build(self.presets[key]) if key in self.presets else []
        return self._regions[key]

    def _build(self, preset: int) -> list[Region]:
        pglob, pzones = self._zones(self.phdr, self.pbag, self.pgen, preset, _INSTRUMENT)
        out = []
        for pz in pzones:
            pgens = {**pglob, **pz}
            inst = pgens[_INSTRUMENT]
            if inst >= len(self.inst) - 1:
                continue
            iglob, izones = self._zones(self.inst, self.ibag, self.igen, inst, _SAMPLE_ID)
            for iz in izones:
                igens = {**iglob, **iz}
                if igens[_SAMPLE_ID] >= len(self.shdr) - 1:
                    continue
                region = self._region(pgens, igens)
                if region is not None:
                    out.append(region)
        return out

    def _region(self, pgens: dict, igens: dict) -> Region | None:
        def inst_value(oper: int) -> int:
            return _signed(oper, igens[oper]) if oper in igens else _DEFAULTS.get(oper, 0)

        def value(oper: int) -> int:
            total = inst_value(oper)
            if oper not in _NOT_ADDITIVE and oper in pgens:
                total += _signed(oper, pgens[oper])
            return total

        pk, ik = _range(pgens.get(_KEY_RANGE, 0x7F00)), _range(igens.get(_KEY_RANGE, 0x7F00))
        pv, iv = _range(pgens.get(_VEL_RANGE, 0x7F00)), _range(igens.get(_VEL_RANGE, 0x7F00))
        keys = (max(pk[0], ik[0]), min(pk[1], ik[1]))
        vels = (max(pv[0], iv[0]), min(pv[1], iv[1]))
        if keys[0] > keys[1] or vels[0] > vels[1]:
            return None
        sid = igens[_SAMPLE_ID]
        sh = self.shdr[sid]
        if int(sh["type"]) & 0x8000:  # ROM sample: no data in the file
            return None
        start = int(sh["start"]) + inst_value(_START) + 32768 * inst_value(_START_COARSE)
        end = int(sh["end"]) + inst_value(_END) + 32768 * inst_value(_END_COARSE)
        loop_start = int(sh["sloop"]) + inst_value(_START_LOOP) + 32768 * inst_value(_START_LOOP_COARSE)
        loop_end = int(sh["eloop"]) + inst_value(_END_LOOP) + 32768 * inst_value(_END_LOOP_COARSE)
        n = len(self.samples)
        start, end = max(0, min(start, n - 2)), max(0, min(end, n - 1))
        if end - start < 2:
            return None
        looped = inst_value(_SAMPLE_MODES) & 1 == 1 and start <= loop_start < loop_end - 1 and loop_end <= end
        root = inst_value(_ROOT_KEY)
        if root < 0:
            root = int(sh["key"]) if int(sh["key"]) <= 127 else 60
        attenuation = min(max(value(_ATTENUATION), 0), 1440)
        sustain = min(max(value(_SUSTAIN), 0), 1440)
        return Region(
            keys=keys, vels=vels, sample=sid, start=start, end=end,
            loop_start=loop_start, loop_end=loop_end, looped=looped,
            rate=max(int(sh["rate"]), 1), root=root,
            tune_cents=value(_COARSE_TUNE) * 100.0 + value(_FINE_TUNE) + int(sh["corr"]),
            scale_tuning=float(value(_SCALE_TUNING)),
            gain=10.0 ** (-attenuation / 200.0),
            pan=min(max(value(_PAN), -500), 500) / 1000.0,
            delay=_timecents(value(_DELAY)), attack=_timecents(value(_ATTACK)),
            hold=_timecents(value(_HOLD)), decay=_timecents(value(_DECAY)),
            sustain=10.0 ** (-sustain / 200.0),
            release=min(_timecents(value(_RELEASE)), _MAX_RELEASE_S),
            key_to_hold=float(value(_KEY_TO_HOLD)), key_to_decay=float(value(_KEY_TO_DECAY)),
        )  # fmt: skip

    def preset_regions(self, program: int, is_drum: bool) -> list[Region]:
        """Regions for a GM program, or the drum kit: bank 128 for drums, bank 0 otherwise, with fallbacks."""
        tries = [(128, program), (128, 0)] if is_drum else [(0, program)]
        tries += [(bank, p) for (bank, p) in sorted(self.presets) if p == program and bank != 128 and not is_drum]
        tries += [(0, 0), min(self.presets, default=(0, 0))]
        for bank, p in tries:
            found = self.regions(bank, p)
            if found:
                return found
        return []

    # --- playing ---------------------------------------------------------------------------
    def _sample_data(self, region: Region) -> np.ndarray:
        key = (region.start, region.end)
        if key not in self._sample_cache:
            seg = np.asarray(self.samples[region.start : region.end + 1], dtype=np.float32) / 32768.0
            self._sample_cache[key] = seg
        return self._sample_cache[key]

    @staticmethod
    def _envelope(region: Region, key: int, on_s: float, times: np.ndarray) -> np.ndarray:
        """Volume envelope (amplitude) at ``times`` seconds for a note released at ``on_s``."""
        hold = region.hold * 2.0 ** (region.key_to_hold * (60 - key) / 1200.0)
        decay = region.decay * 2.0 ** (region.key_to_decay * (60 - key) / 1200.0)

        def held(t):
            t0 = t - region.delay
            attack = np.clip(t0 / region.attack, 0.0, 1.0) if region.attack > 0 else (t0 >= 0) * 1.0
            after = np.maximum(t0 - region.attack - hold, 0.0)
            cb = np.minimum(after * (1000.0 / decay), _sustain_cb(region)) if decay > 0 else np.where(after > 0, _sustain_cb(region), 0.0)
            return attack * 10.0 ** (-cb / 200.0)

        env = held(np.minimum(times, on_s))
        released = times > on_s
        if released.any():  # -100 dB over the release time, from the level at note-off
            env[released] *= 10.0 ** (-(times[released] - on_s) * (1000.0 / max(region.release, 1e-3)) / 200.0)
        return env

    def render_note(self, region: Region, key: int, velocity: int, duration: float, sr: int) -> np.ndarray:
        """One region of one note as mono float32 (gain, envelope, no pan)."""
        data = self._sample_data(region)
        step = 2.0 ** (((key - region.root) * region.scale_tuning + region.tune_cents) / 1200.0) * region.rate / sr
        on_s = max(duration, 1.0 / sr)
        sustain_cb = _sustain_cb(region)
        if sustain_cb >= _SILENT_CB and region.decay > 0:  # a decaying sound: silent before its note-off?
            decay = region.decay * 2.0 ** (region.key_to_decay * (60 - key) / 1200.0)
            hold = region.hold * 2.0 ** (region.key_to_hold * (60 - key) / 1200.0)
            on_s = min(on_s, region.delay + region.attack + hold + decay * _SILENT_CB / 1000.0)
        total = round((on_s + region.release * _SILENT_CB / 1000.0) * sr) + 1
        if not region.looped:
            total = min(total, int((len(data) - 2) / step) + 1)
        if total <= 0:
            return np.zeros(0, np.float32)
        pos = np.arange(total, dtype=np.float64) * step
        if region.looped:
            ls, le = region.loop_start - region.start, region.loop_end - region.start
            k = int(np.searchsorted(pos, le))  # positions only grow: wrap the tail
            pos[k:] = ls + np.mod(pos[k:] - ls, le - ls)
        idx = pos.astype(np.int64)
        frac = (pos - idx).astype(np.float32)
        np.minimum(idx, len(data) - 2, out=idx)
        lo = data[idx]
        wave = lo + (data[idx + 1] - lo) * frac
        # the envelope at a control rate of one value per _CONTROL samples
        coarse = self._envelope(region, key, on_s, np.arange(0, total + _CONTROL, _CONTROL) / sr)
        env = np.repeat(coarse.astype(np.float32), _CONTROL)[:total]
        vel_gain = (max(1, min(int(velocity), 127)) / 127.0) ** 2
        wave *= env
        wave *= np.float32(region.gain * vel_gain)
        return wave

    def render(self, tracks, sample_rate: int = 44100) -> np.ndarray:
        """Play ``tracks`` of ``(program, is_drum, notes)`` where notes are rows of
        ``(start_s, duration_s, pitch, velocity)``. Returns float32 stereo audio, shape (2, n).
        """
        sr = int(sample_rate)
        tracks = [(int(p), bool(d), np.asarray(n, np.float64).reshape(-1, 4)) for p, d, n in tracks]
        last = max((float((n[:, 0] + np.maximum(n[:, 1], 0)).max()) for _, _, n in tracks if len(n)), default=0.0)
        out = np.zeros((2, round((last + _MAX_RELEASE_S) * sr) + 2), np.float32)
        for program, is_drum, notes in tracks:
            regions = self.preset_regions(program, is_drum)
            for start_s, dur_s, pitch, velocity in notes:
                key, vel = int(pitch), int(velocity)
                at = max(0, round(float(start_s) * sr))
                for r in regions:
                    if not (r.keys[0] <= key <= r.keys[1] and r.vels[0] <= vel <= r.vels[1]):
                        continue
                    mono = self.render_note(r, key, vel, max(float(dur_s), 0.0), sr)[: out.shape[1] - at]
                    angle = (r.pan + 0.5) * math.pi / 2
                    out[0, at : at + len(mono)] += mono * math.cos(angle)
                    out[1, at : at + len(mono)] += mono * math.sin(angle)
        return out


@functools.lru_cache(maxsize=4)
def load(path: str) -> SoundFont:
    """A cached ``SoundFont`` (parsing is done once per process and path)."""
    return SoundFont(path)
