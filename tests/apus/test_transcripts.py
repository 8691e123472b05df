"""Readable protocol scenarios in testdata/*.txt (see transcripts.py for the format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apus.transcripts import run_file

FILES = sorted((Path(__file__).parent / "testdata").glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path):
    run_file(path)
