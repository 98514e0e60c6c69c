"""Command line: ``riskengine run CONFIG.yaml [--out DIR] [--paths N] [--seed S] [--resume]
[--coordinator HOST:PORT --num-processes N --process-id I]``.

A run writes its completed Monte Carlo chunks to ``<out>.checkpoint/`` as it goes (removed
when it succeeds); ``--resume`` picks them up after a crash or a kill. With the three
process options, N processes (one per host, or per accelerator group) join through
``jax.distributed`` and share the paths; process 0 writes the outputs.

Bad input prints one line ``error: <field>: <problem>`` and exits with code 2, leaving no
output directory behind. ``--out`` must be absent, empty, or a previous riskengine result
(whose own files alone are replaced); anything else is refused. An unexpected exception
prints ``error: internal: <type>: <message>; please report`` and exits with code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import riskengine
from riskengine import budget, checkpoint, distributed
from riskengine.cache import enable_compilation_cache
from riskengine.config import load_yaml, validate
from riskengine.errors import ConfigError, one_line
from riskengine.jobs import JOBS, Job, JobContext, execute
from riskengine.report.output import (
    atomic_directory,
    check_output_directory,
    missing_parents,
    remove_empty,
)

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
DEFAULT_MAX_HOURS = 24.0
# What making and writing a result needs (tables, report figures, parquet), imported on a thread while
# the job computes (see _import_in_background).
WRITER_MODULES = ("pandas", "matplotlib.figure", "matplotlib.backends.backend_agg", "pyarrow.parquet")


def _import_in_background(modules: tuple[str, ...]) -> None:
    """Import ``modules`` on a thread: XLA releases the GIL while it runs, so these imports
    (about 0.5 s) overlap the job's simulation instead of following it. Nothing computed
    depends on them; a module that fails to import here fails again, visibly, where it is used."""

    def work() -> None:
        for name in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    threading.Thread(target=work, name="riskengine-imports").start()


def _progress_bar(enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="path", unit_scale=True, file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


def run_job(
    config_path: str, *, out: str | None, paths: int | None, seed: int | None, progress: bool,
    resume: bool = False, max_hours: float = DEFAULT_MAX_HOURS,
) -> tuple[Path, int]:
    """Validate the config, run the job into a temporary directory, rename it to ``out``.

    Completed chunks are saved under ``<out>.checkpoint/`` while it runs; with ``resume``
    the saved ones are reused (a checkpoint of a different run is refused). In a
    ``jax.distributed`` run, only process 0 writes ``out``.

    Returns the output directory and the job's exit code (nonzero on a limit breach)."""
    import jax


    data = load_yaml(config_path)
    kind = data.get("job")
    if kind not in JOBS:
        raise ConfigError(f"job: unknown job kind {one_line(repr(kind), limit=60)}; expected one of {sorted(JOBS)}")
    job = JOBS[kind]
    base_dir = Path(config_path).parent
    data = job.apply_overrides(data, paths=paths, seed=seed)
    config = validate(job.Config, data, context={"base_dir": base_dir})
    if job.dtype(config) == "float64":
        jax.config.update("jax_enable_x64", True)
    shown = out if out else str(Path("out") / Path(config_path).stem)
    out_dir = Path(shown)

    processes, me = jax.process_count(), jax.process_index()
    if me == 0:
        check_output_directory(out_dir, shown=shown)  # before any work: never a foreign folder
    _check_budget(job, config, base_dir=base_dir, max_hours=max_hours, quiet=me != 0)
    created = missing_parents(out_dir)
    folder = out_dir.parent / f"{out_dir.name}.checkpoint"
    if processes > 1:
        folder = folder / f"process-{me}-of-{processes}"
    try:
        saved = checkpoint.Checkpoint(
            folder, fingerprint=_fingerprint(kind, config, processes), resume=resume,
            description={"job": kind, "config": str(config_path), "processes": processes},
        )
    except checkpoint.CheckpointMismatch as err:
        raise ConfigError(f"resume: {err}") from None
    # Only process 0 writes the outputs; the others run the same job into a scratch folder.
    target = out_dir if me == 0 else Path(tempfile.mkdtemp(prefix=f"riskengine-process-{me}-"))
    update, close = _progress_bar(progress and me == 0)
    _import_in_background(WRITER_MODULES)
    try:
        with checkpoint.active(saved), atomic_directory(target, shown=shown, job=kind) as tmp:
            result = execute(job, config, tmp, base_dir=base_dir, progress=update)
            summary, exit_code, console = result.summary, result.exit_code, result.console
    except ConfigError:
        saved.remove()  # bad input: nothing worth resuming, nothing left behind
        remove_empty(created)
        raise
    except BaseException:
        if not saved.has_chunks():  # nothing a --resume could reuse: no debris
            saved.remove()
            remove_empty(created)
        raise
    finally:
        close()
        if me != 0:
            shutil.rmtree(target, ignore_errors=True)
    saved.remove()
    if processes > 1:
        with contextlib.suppress(OSError):  # the last process to finish removes the parent
            folder.parent.rmdir()
    if me == 0:
        for where in _not_converged(summary):
            print(f"warning: {where}: did not converge (see summary.json)", file=sys.stderr)
        if console:
            print(console)
    return out_dir, exit_code


def _not_converged(summary: Any, where: str = "") -> list[str]:
    """Where a summary says ``converged: false`` (a calibration a user must not trust blindly)."""
    found = []
    if isinstance(summary, dict):
        if summary.get("converged") is False:
            found.append(where or "calibration")
        for key, value in summary.items():
            if isinstance(value, dict | list):
                found += _not_converged(value, f"{where}.{key}" if where else str(key))
    elif isinstance(summary, list):
        for i, value in enumerate(summary):
            found += _not_converged(value, f"{where}[{i}]")
    return found[:10]


def _check_budget(job: Job, config: Any, *, base_dir: Path, max_hours: float, quiet: bool) -> None:
    """Refuse a run that cannot fit in memory or would exceed ``max_hours`` (one line with
    the estimate); print the estimate of a large run that will fit."""
    estimate = job.estimate(config, JobContext(base_dir=base_dir))
    if estimate is None:
        return
    line = budget.check(estimate, max_hours=max_hours)
    if line and not quiet:
        print(line, file=sys.stderr)


def _count(text: str) -> int:
    """A path count as users write it: ``100000``, ``1e6``, ``2**20``."""
    try:
        value = float(text) if "**" not in text else float(int(text.split("**")[0]) ** int(text.split("**")[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text[:40]!r}")
    return int(value)


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text[:40]!r}")
    return value


def _fingerprint(job: str, config: Any, processes: int) -> str:
    """What decides a run's numbers: the validated config (seed and paths included), the
    process count, the package and JAX versions."""
    import jax


    payload = {"job": job, "config": config.model_dump(mode="json"), "processes": processes,
               "riskengine": riskengine.__version__, "jax": jax.__version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are bad input too: one line, exit 2."""
    def error(self, message: str):  # noqa: D102 - argparse's hook
        print(f"error: {one_line(message)} (see riskengine run --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="riskengine", description="Monte Carlo risk engine for crypto derivatives.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a job from a YAML config")
    run.add_argument("config", help="job config (YAML)")
    run.add_argument("--out", help="output directory (default: out/<config name>)")
    run.add_argument("--paths", type=_count, help="override mc.paths (1e6 and 2**20 are accepted)")
    run.add_argument("--max-hours", type=_hours, default=DEFAULT_MAX_HOURS,
                     help=f"refuse a run estimated to take longer (default {DEFAULT_MAX_HOURS:g})")
    run.add_argument("--seed", type=int, help="override mc.seed")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--fail-on-breach", action="store_true", help="exit with code 3 when a risk limit is breached")
    run.add_argument("--resume", action="store_true",
                     help="reuse the chunks a killed run saved in <out>.checkpoint/ (same config, seed and paths)")
    run.add_argument("--coordinator", metavar="HOST:PORT", help="jax.distributed coordinator (process 0's address)")
    run.add_argument("--num-processes", type=int, metavar="N", help="processes in a jax.distributed run")
    run.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0 .. N-1")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:

        enable_compilation_cache()

        try:
            distributed.check_process_arguments(
                coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
            )
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if args.coordinator is not None:
            distributed.initialize(
                coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
            )
        out_dir, job_code = run_job(
            args.config, out=args.out, paths=args.paths, seed=args.seed,
            progress=not args.no_progress and sys.stderr.isatty(), resume=args.resume,
            max_hours=args.max_hours,
        )
    except ConfigError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; run again with --resume to reuse the saved chunks", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not bad input: one line, and the type for the report
        print(f"error: internal: {type(err).__name__}: {one_line(str(err), limit=200)}; please report",
              file=sys.stderr)
        return EXIT_INTERNAL
    if args.process_id:
        print(f"process {args.process_id} done in {time.perf_counter() - started:.1f} s")
        return 0
    print(f"wrote {out_dir}/summary.json and {out_dir}/report.html in {time.perf_counter() - started:.1f} s")
    if job_code and args.fail_on_breach:
        print("limit breached: see breaches in summary.json", file=sys.stderr)
        return job_code
    return 0


def entry() -> None:
    """The ``riskengine`` command: :func:`main`, then leave at once.

    When ``main`` returns, a run's files are written, closed and renamed into place; what is
    left is the interpreter's teardown (every module of jax, pandas, matplotlib and XLA's CPU
    client), about 0.5 s of a short job's wall clock, so the process ends with ``os._exit``
    after flushing its output. A ``jax.distributed`` run exits normally, so that its
    processes shut down together, and so does a run under a profiler or a tracer (cProfile,
    coverage), which write their results at exit.

    Everything imported so far (jax, equinox, numpy, the engine: most of the process's
    objects) is moved out of the garbage collector's sight first (``gc.freeze``): the
    process lives for one run, and its full collections (two or three in a price job,
    0.1 s each) then skip them."""
    gc.freeze()
    code = main()
    if distributed.joined() or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
