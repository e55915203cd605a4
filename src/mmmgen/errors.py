"""Named errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class MMMGenError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class RenderError(MMMGenError):
    """A rendering request that cannot be met (unknown format, missing input or SoundFont)."""
