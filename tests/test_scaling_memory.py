"""Acceptance (slow, minutes): 10^7 paths x 365 daily steps of the stress job on the
bundled book stay under 4 GB peak RSS (``benchmarks/stress_memory.py --long``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_ten_million_paths_365_steps_stay_under_4gb():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stress_memory.py"), "--long"],
                          capture_output=True, text=True, timeout=4 * 3600)
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"paths=10000000 horizon=365d steps=365: peak RSS ([\d.]+) GiB", done.stdout)
    assert match, done.stdout
    assert float(match.group(1)) < 4.0 * 1e9 / 2**30  # 4 GB
