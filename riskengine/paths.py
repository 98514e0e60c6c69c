"""Paths written in configs: one rule for every job and loader (a leaf module)."""

from __future__ import annotations

from pathlib import Path


def resolve_path(path: str | Path, base_dir: str | Path | None) -> Path:
    """A path from a config: as given when absolute or when it exists from the current
    directory, else relative to the config file's folder ``base_dir``."""
    p = Path(path)
    if p.is_absolute() or p.exists() or base_dir is None:
        return p
    return Path(base_dir) / p
