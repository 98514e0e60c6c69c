"""Acceptance (slow): a 10,000-position book, 10^5 paths, 10 daily steps, peak RSS < 4 GB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_large_book_stays_under_4gb():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stress_memory.py")],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "peak RSS" in done.stdout
