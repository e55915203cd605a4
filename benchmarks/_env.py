"""What every benchmark records beside its numbers: hardware, load, library versions, git state."""

from __future__ import annotations

import json
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


def merge_run(json_path: Path, label: str, run: dict, render, *, key: str | None = None, indent: int = 1) -> dict:
    """Store ``run`` under ``label`` in the results file ``json_path`` (other labels' runs kept) and write
    ``render(runs)`` beside it as ``.md``; returns all the runs. ``key``: the runs sit under that key of the file.
    """
    json_path = Path(json_path)
    old = json.loads(json_path.read_text()) if json_path.is_file() else {}
    runs = (old.get(key, {}) if key else old) | {label: run}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({key: runs} if key else runs, indent=indent, default=str) + "\n")
    json_path.with_suffix(".md").write_text(render(runs))
    return runs
