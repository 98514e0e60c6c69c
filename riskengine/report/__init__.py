"""Reports and result files.

Each name is imported from its module on first use (PEP 562): the CLI needs only
:mod:`.output` before a job runs, and the figure-drawing modules import matplotlib, about
0.5 s of start-up that a run pays only when its report draws. Figures are drawn off-screen
into PNGs: matplotlib's Agg backend is named here, through its environment variable, so that
it holds for every pyplot imported after this package (unless ``MPLBACKEND`` says otherwise)
without importing matplotlib now.
"""

import importlib
import os
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

_MODULES = {
    "Report": "html",
    "atomic_directory": "output",
    "write_json": "output",
    "write_parquet": "output",
    "liquidation_lines": "stress",
    "stress_report": "stress",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    globals()[name] = value
    return value
