"""CPU threads on a shared machine: how many, and how idle OpenMP threads wait.

torch computes with one OpenMP team. By default idle team members spin before they sleep, and
the team is as large as the machine: beside a busy neighbour each parallel op then waits for the
member that shares a core with it, and the spinning members take the neighbour's time too
(measured: 11x slower steps beside one busy loop on 2 cores). So:

* ``early_setup()`` (the ``mmmgen`` command calls it before anything imports torch) asks for
  ``OMP_WAIT_POLICY=PASSIVE``: idle members sleep at once. An explicit setting wins.
* ``choose_threads(requested)``: ``requested`` when given, else the cores this process may use
  (affinity, cgroup quota) less those other processes keep busy right now (``/proc/stat``).
* ``ThreadFollower``: re-measures the others' use every few seconds and follows it (training).

Nothing here imports torch at module level.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

WAIT_ENV = "OMP_WAIT_POLICY"
THREADS_ENV = "MMMGEN_THREADS"  # the thread count of every mmmgen command (0 or unset: follow the free cores)
TAKEN = 0.35  # a core counts as taken once others use more than this share of it


def early_setup() -> None:
    """Before torch loads: passive OpenMP waiting unless the user chose a policy."""
    os.environ.setdefault(WAIT_ENV, "PASSIVE")


def allowed_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int] | None:
    """``(busy, total)`` clock ticks of ``cpus`` (all when None) from ``/proc/stat``."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return busy, total


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Usage:
    """Others' CPU use (in cores) between two readings; ``read()`` then ``others()``."""

    cpus: set[int] | None = None
    last: tuple | None = field(default=None, init=False)

    def read(self) -> None:
        self.last = (_cpu_ticks(self.cpus), _own_seconds(), time.monotonic())

    def others(self) -> float | None:
        """Cores kept busy by other processes since the last ``read()`` (and read again)."""
        before = self.last
        self.read()
        if before is None or before[0] is None or self.last[0] is None:
            return None
        busy, total = (a - b for a, b in zip(self.last[0], before[0], strict=True))
        wall = self.last[2] - before[2]
        if total <= 0 or wall <= 0:
            return None
        cores = len(self.cpus) if self.cpus else os.cpu_count() or 1
        all_busy = busy / total * cores  # cores in use by everyone
        own = (self.last[1] - before[1]) / wall
        return max(0.0, all_busy - own)


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def threads_for(others: float | None, cores: int) -> int:
    """Threads that leave others' busy cores to them: a core is taken once others use > ``TAKEN`` of it."""
    if others is None:
        return cores
    return max(1, min(cores, cores - math.ceil(others - TAKEN)))


def requested_threads(requested: int | None = None) -> int | None:
    """``requested`` (a flag), else ``MMMGEN_THREADS``, else ``OMP_NUM_THREADS`` (torchrun sets 1 per process);
    None: follow the free cores."""
    if requested:
        return requested
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        env = os.environ.get(name, "").strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
    return None


def choose_threads(requested: int | None = None, sample_s: float = 0.3) -> dict:
    """The thread count to use now and why: ``{"threads", "cores", "others", "wait", "follow"}``.

    ``requested`` (or ``MMMGEN_THREADS``) wins; else the allowed cores less those others keep busy
    over ``sample_s`` seconds. ``follow``: whether the count may change later (``ThreadFollower``).
    """
    cores, fixed = allowed_cores(), requested_threads(requested)
    others, affinity, why = None, _affinity(), "as asked"
    if fixed is None and affinity is not None and cores < len(affinity):
        fixed, why = cores, "the cgroup CPU quota"  # that share is this process's, whatever the rest of the host does
    if fixed is None:
        usage = Usage(affinity)
        usage.read()
        time.sleep(sample_s)
        others = usage.others()
        why = "no load reading" if others is None else f"others keep {others:.1f} busy"
    threads = fixed or threads_for(others, cores)
    return {"threads": threads, "cores": cores, "others": None if others is None else round(others, 2), "why": why,
            "wait": os.environ.get(WAIT_ENV, "default (spin, then sleep)"), "follow": fixed is None}


def describe(choice: dict) -> str:
    follow = ", following the free cores" if choice["follow"] else ""
    return (f"CPU threads: {choice['threads']} of {choice['cores']} cores ({choice['why']}{follow}); "
            f"OpenMP idle threads: {str(choice['wait']).lower()}")


def apply_threads(requested: int | None = None, say=print) -> dict:
    """Choose and set torch's thread count; ``say`` the choice. Returns ``choose_threads``'s dict."""
    import torch

    choice = choose_threads(requested)
    torch.set_num_threads(choice["threads"])
    if say is not None:
        say(describe(choice))
    return choice


class ThreadFollower:
    """Every ``every_s`` seconds: re-measure the others' use and set torch's threads to match."""

    def __init__(self, cores: int, every_s: float = 10.0):
        self.cores, self.every_s = cores, every_s
        self.usage = Usage(_affinity())
        self.usage.read()
        self.checked = time.monotonic()
        self.changes: list[tuple[float, int]] = []

    def tick(self) -> int | None:
        """Call often (each step); returns the new thread count when it changed, else None."""
        if time.monotonic() - self.checked < self.every_s:
            return None
        import torch

        self.checked = time.monotonic()
        want = threads_for(self.usage.others(), self.cores)
        if want == torch.get_num_threads():
            return None
        log.info("CPU threads %d -> %d (other processes' use changed)", torch.get_num_threads(), want)
        torch.set_num_threads(want)
        self.changes.append((time.time(), want))
        return want
