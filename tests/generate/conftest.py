"""Fixtures of the generation tests: a tiny untrained GPT-2 and a ``Generator`` over it."""

from __future__ import annotations

import pytest
from tiny import untrained_model

from mmmgen.generate.song import Generator


@pytest.fixture(scope="module")
def untrained():
    return untrained_model()


@pytest.fixture
def generator(untrained):
    return Generator(*untrained)
