"""What every benchmark records beside its numbers: hardware, load, library versions, git state."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version(package)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment(packages: tuple[str, ...], **hardware) -> dict:
    """Date, hardware (``hardware`` adds fields), OS, Python, ``packages`` versions and the git commit."""
    dirty = git("diff", "--name-only", "HEAD", "--", "src")  # tracked files edited since HEAD
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": {
            "cpu": cpu_model(),
            "logical_cores": os.cpu_count(),
            **hardware,
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        },
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in packages},
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "src_modified_tracked_files": dirty.splitlines() if dirty else [],
    }
