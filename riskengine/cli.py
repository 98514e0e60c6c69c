"""Command line: ``riskengine run CONFIG.yaml [--out DIR] [--paths N] [--seed S]``.

Bad input prints one line ``error: <field>: <problem>`` and exits with code 2, leaving no
output directory behind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from riskengine.config import ConfigError, load_yaml, validate

EXIT_BAD_INPUT = 2


def _apply_overrides(data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
    data = dict(data)
    if paths is not None or seed is not None:
        mc = dict(data.get("mc") or {})
        if paths is not None:
            mc["paths"] = paths
        if seed is not None:
            mc["seed"] = seed
        data["mc"] = mc
    return data


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
    config_path: str, *, out: str | None, paths: int | None, seed: int | None, progress: bool
) -> tuple[Path, int]:
    """Validate the config, run the job into a temporary directory, rename it to ``out``.

    Returns the output directory and the job's exit code (nonzero on a limit breach)."""
    from riskengine.jobs import JOBS

    data = load_yaml(config_path)
    job = data.get("job")
    if job not in JOBS:
        raise ConfigError(f"job: unknown job kind {job!r}; expected one of {sorted(JOBS)}")
    module = JOBS[job]
    # A job whose config has no ``mc`` section says where --paths / --seed go.
    overrides = getattr(module, "apply_overrides", _apply_overrides)
    data = overrides(data, paths=paths, seed=seed)
    config = validate(module.Config, data, context={"base_dir": Path(config_path).parent})
    mc = getattr(config, "mc", None)
    if getattr(mc, "dtype", "float32") == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    out_dir = Path(out) if out else Path("out") / Path(config_path).stem
    from riskengine.report import atomic_directory

    update, close = _progress_bar(progress)
    try:
        with atomic_directory(out_dir) as tmp:
            summary = module.run(config, tmp, progress=update, base_dir=Path(config_path).parent)
    finally:
        close()
    exit_code = getattr(module, "exit_code", lambda summary: 0)(summary)
    return out_dir, exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskengine", description="Monte Carlo risk engine for crypto derivatives.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a job from a YAML config")
    run.add_argument("config", help="job config (YAML)")
    run.add_argument("--out", help="output directory (default: out/<config name>)")
    run.add_argument("--paths", type=int, help="override mc.paths")
    run.add_argument("--seed", type=int, help="override mc.seed")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--fail-on-breach", action="store_true", help="exit with code 3 when a risk limit is breached")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        out_dir, job_code = run_job(
            args.config, out=args.out, paths=args.paths, seed=args.seed,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out_dir}/summary.json and {out_dir}/report.html in {time.perf_counter() - started:.1f} s")
    if job_code and args.fail_on_breach:
        print("limit breached: see breaches in summary.json", file=sys.stderr)
        return job_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
