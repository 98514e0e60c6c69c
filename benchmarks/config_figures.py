"""Run every config in configs/ and compare the figures of two runs (issue 17: a refactor
must not change results).

    python benchmarks/config_figures.py run OUT [--paths 2048]   # every config -> OUT/<name>/
    python benchmarks/config_figures.py compare BEFORE AFTER     # figure by figure

Run it once on the code before a change (``--root`` a `git worktree` of the old commit:
its configs run with its package) and once after. ``compare`` reads both summary.json files
of each config present in both, ignores timings (keys containing ``seconds``, and the
exposure job's ``timings``), and reports every number that differs: ``bitwise`` when all
are equal, else the largest relative difference per config. Exit 1 when any figure differs by more than --rtol (default 1e-12)
outside --allow (configs whose changes are expected, e.g. a bug fixed).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(out: Path, paths: int, root: Path = ROOT) -> None:
    """Run each config of ``root``/configs with the riskengine of ``root`` (the command runs
    in ``root``, whose package comes first on the path)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for config in sorted((root / "configs").glob("*.yaml")):
        target = out / config.stem
        done = subprocess.run(
            [sys.executable, "-m", "riskengine.cli", "run", str(config), "--out", str(target),
             "--paths", str(paths), "--no-progress"],
            capture_output=True, text=True, cwd=root,
        )
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
        print(f"{config.stem}: {status}", flush=True)


def _is_timing(key: str) -> bool:
    return "seconds" in key or key.startswith("timings.")


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def compare(before: Path, after: Path, *, rtol: float, atol: float, allow: set[str]) -> int:
    worst_exit = 0
    for folder in sorted(p for p in before.iterdir() if p.is_dir()):
        a, b = folder / "summary.json", after / folder.name / "summary.json"
        if not a.exists() or not b.exists():
            print(f"{folder.name}: missing in {'before' if not a.exists() else 'after'}")
            continue
        fa = {k: v for k, v in _flatten(json.loads(a.read_text())) if not _is_timing(k)}
        fb = {k: v for k, v in _flatten(json.loads(b.read_text())) if not _is_timing(k)}
        worst, where, changed = 0.0, "", 0
        for key in sorted(set(fa) | set(fb)):
            x, y = fa.get(key), fb.get(key)
            if x == y or (isinstance(x, str) and isinstance(y, str)):
                continue  # texts (paths, names) are not figures
            changed += 1
            if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
                rel = abs(x - y) / max(abs(x), abs(y), 1e-300)
                if abs(x - y) <= atol:
                    rel = 0.0  # at the noise floor (e.g. the residuals of an exact fit)
            else:
                rel = math.inf
            if rel > worst:
                worst, where = rel, f"{key}: {x!r} -> {y!r}"
        verdict = "bitwise" if not changed else f"{changed} figures differ, largest relative {worst:.3g} ({where})"
        bad = changed and worst > rtol and folder.name not in allow
        print(f"{folder.name}: {verdict}{'  <-- FAIL' if bad else ''}")
        worst_exit = worst_exit or int(bool(bad))
    return worst_exit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--paths", type=int, default=2048)
    r.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code and configs run")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--rtol", type=float, default=1e-12)
    c.add_argument("--atol", type=float, default=0.0, help="differences this small count as none")
    c.add_argument("--allow", nargs="*", default=[])
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.paths, args.root.resolve())
        return 0
    return compare(args.before, args.after, rtol=args.rtol, atol=args.atol, allow=set(args.allow))


if __name__ == "__main__":
    sys.exit(main())
