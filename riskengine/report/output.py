"""Writing results: everything goes to a temporary directory renamed into place at the end,
so a failed run never leaves a half-written output directory."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from riskengine.errors import ConfigError

if TYPE_CHECKING:  # pandas is imported by the jobs that make tables, not to write them
    import pandas as pd


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf: null means "not available"
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")


def write_parquet(path: Path, table: pd.DataFrame) -> None:
    table.to_parquet(path, index=False)


MARKER = ".riskengine-result.json"
_TMP_INSIDE = ".riskengine-tmp-"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_temporaries(target: Path) -> list[Path]:
    """Temporary folders of earlier runs into ``target`` whose process is gone (a kill)."""
    found = []
    places = [(target.parent, f".{target.name}.tmp-")]
    if target.is_dir():
        places.append((target, _TMP_INSIDE))
    for folder, prefix in places:
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                    pid = entry.name[len(prefix):].split("-", 1)[0]
                    if pid.isdigit() and not _pid_alive(int(pid)):
                        found.append(entry)
    return found


def previous_result_files(target: Path) -> list[str] | None:
    """The files a previous riskengine result in ``target`` wrote (from its marker), or
    None when ``target`` holds no readable marker."""
    try:
        data = json.loads((target / MARKER).read_text())
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    # Only plain names directly inside target: a marker never reaches outside it.
    return [f for f in files if f and f not in (".", "..", MARKER) and "/" not in f and "\\" not in f]


def check_output_directory(target: str | Path, *, shown: str | None = None) -> None:
    """Refuse an output directory that a run must not write: raise :class:`ConfigError`
    unless ``target`` is absent, an empty directory, or a previous riskengine result."""
    target = Path(target)
    shown = shown if shown is not None else str(target)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ConfigError(f"--out {shown}: exists and is not a directory; choose another directory")
        # riskengine's own temporary folders (this run's, or a killed run's) do not count
        entries = [p for p in target.iterdir() if not p.name.startswith(_TMP_INSIDE)]
        if entries and previous_result_files(target) is None:
            raise ConfigError(f"--out {shown}: exists and is not a riskengine result; choose another directory")
        if not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {shown}: not writable")
    else:
        parent = _existing_ancestor(target)
        if not parent.is_dir():
            raise ConfigError(f"--out {shown}: {str(parent)!r} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {shown}: cannot create it: {str(parent)!r} is not writable")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def missing_parents(target: str | Path) -> list[Path]:
    """The ancestors of ``target`` that do not exist yet, deepest first (to remove the
    ones a rejected run created)."""
    missing = []
    path = Path(target).absolute().parent
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove each folder (deepest first) if it exists and is empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, shown: str | None = None, job: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory for a run's results; on success its files become
    ``target``'s, on error it is removed and nothing else is touched.

    ``target`` must be absent, empty, or a previous riskengine result (see
    :func:`check_output_directory`, checked again here): a previous result's own files
    (listed in its marker file) are replaced, and nothing else in the folder is touched.
    Every result gets a marker listing its files. Folders are created with the user's
    umask; temporary folders left by a killed run are removed."""
    target = Path(target).absolute()
    shown = shown if shown is not None else str(target)
    check_output_directory(target, shown=shown)
    for stale in _stale_temporaries(target):
        shutil.rmtree(stale, ignore_errors=True)
    created = missing_parents(target)
    inside = target.is_dir()
    try:
        if inside:  # an existing folder: work inside it, whatever its parent allows
            tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_INSIDE}{os.getpid()}-", dir=target))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
        tmp.chmod(0o777 & ~_umask())
    except OSError as err:
        remove_empty(created)
        raise ConfigError(f"--out {shown}: cannot write: {err.strerror or err}") from None
    try:
        yield tmp
        check_output_directory(target, shown=shown)  # nothing appeared there meanwhile
        _commit(tmp, target, job=job)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS and _is_output_error(err, tmp, target):
            raise ConfigError(f"--out {shown}: cannot write: {err.strerror or err}") from None
        raise


def _is_output_error(err: OSError, tmp: Path, target: Path) -> bool:
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    name = str(err.filename or "")
    return name.startswith((str(tmp), str(target)))


def _commit(tmp: Path, target: Path, *, job: str | None) -> None:
    from riskengine import __version__

    names = sorted(p.name for p in tmp.iterdir())
    marker = {"riskengine": __version__, "job": job, "files": names}
    write_json(tmp / MARKER, marker)
    if not target.exists():
        os.replace(tmp, target)
        return
    old = previous_result_files(target) or []
    # While files move, the marker lists old and new ones: a crash half-way leaves a folder
    # the next run still recognises (and cleans) as its own.
    _write_marker(target, {**marker, "files": sorted(set(old) | set(names))})
    for name in old:
        path = target / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for name in names:
        os.replace(tmp / name, target / name)
    os.replace(tmp / MARKER, target / MARKER)
    tmp.rmdir()


def _write_marker(target: Path, marker: dict[str, Any]) -> None:
    fd, name = tempfile.mkstemp(prefix=".marker-", dir=target)
    with os.fdopen(fd, "w") as f:
        json.dump(marker, f)
    os.replace(name, target / MARKER)
