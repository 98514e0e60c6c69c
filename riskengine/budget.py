"""What a run will cost, estimated before it starts: memory held and work done.

Each job states its :class:`Estimate` from its validated config (paths, steps, positions,
epochs). The CLI refuses a run that cannot fit in memory or would take longer than
``--max-hours`` (one line with the estimate, exit 2), and prints the estimate first for a
large run that will fit. The rates below are this project's measured orders of magnitude
on a 2-core CPU (benchmarks/RESULTS.md), scaled by the core count, and by
``ACCELERATOR_SPEEDUP`` on a GPU/TPU backend; an estimate is an order of magnitude, which
is what a refusal needs: a run refused at 24 h is one that would take days.
"""

from __future__ import annotations

import dataclasses
import os

from riskengine.errors import ConfigError

# Units of work per second on the 2-core reference CPU.
RATES = {
    "path_steps": 5e7,        # one path moved one time step by a model (GBM ~2e8, SVCJ ~3e7)
    "revaluations": 5e7,      # one position revalued on one path
    "train_path_dates": 1e7,  # one path through one hedge date, forward and backward
    "quote_steps": 1e7,       # one market-making path through one quoting step
}
ACCELERATOR_SPEEDUP = 50.0
LARGE_SECONDS = 60.0
LARGE_BYTES = 2.0**31
MEMORY_SHARE = 0.8  # of the machine's memory a run may plan to hold


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Memory (bytes) and work (units of ``RATES``) of a run; ``field`` is the config
    field a user would change (named in the refusal), ``detail`` says where the numbers
    come from."""

    memory_bytes: float
    work: dict[str, float]
    field: str
    detail: str

    def seconds(self, *, speed: float | None = None) -> float:
        speed = machine_speed() if speed is None else speed
        return sum(units / (RATES[kind] * speed) for kind, units in self.work.items())


def machine_speed() -> float:
    """How much faster than the 2-core reference CPU this machine's default backend is."""
    import jax

    if jax.default_backend() != "cpu":
        return ACCELERATOR_SPEEDUP
    return max(1.0, (os.cpu_count() or 2) / 2.0)


def machine_memory() -> float:
    """Bytes of memory of this machine (physical; a cgroup limit where lower)."""
    total = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, float(text))
    return total


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 2 * 365 * 86400:
        return f"{s / 86400:.0f} days"
    return f"{s / (365 * 86400):.2g} years"


def check(estimate: Estimate, *, max_hours: float, memory: float | None = None, speed: float | None = None) -> str | None:
    """Raise :class:`ConfigError` when the run cannot fit in memory or exceeds
    ``max_hours``; return a line to print for a large run that will fit, else None."""
    memory = machine_memory() if memory is None else memory
    seconds = estimate.seconds(speed=speed)
    if estimate.memory_bytes > MEMORY_SHARE * memory:
        raise ConfigError(
            f"{estimate.field}: the run would hold about {human_bytes(estimate.memory_bytes)} of memory "
            f"({estimate.detail}); this machine has {human_bytes(memory)}"
        )
    if seconds > max_hours * 3600:
        raise ConfigError(
            f"{estimate.field}: the run would take about {human_seconds(seconds)} ({estimate.detail}), "
            f"over --max-hours {max_hours:g}; reduce it or raise --max-hours"
        )
    if seconds > LARGE_SECONDS or estimate.memory_bytes > LARGE_BYTES:
        return (f"estimate: about {human_seconds(seconds)} and {human_bytes(estimate.memory_bytes)} of memory "
                f"({estimate.detail})")
    return None
