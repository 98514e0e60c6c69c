"""`--out` never destroys a user's files (issue 16): the output directory is created only
when absent or empty, and a non-empty one is replaced only when it holds a previous
riskengine result, and then only that result's own files."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from riskengine.cli import main
from riskengine.report.output import MARKER

CONFIG = {
    "job": "price",
    "model": {"name": "gbm", "params": {"sigma": 0.2}},
    "market": {"spot": 100.0, "rate": 0.0},
    "instruments": [{"type": "european", "option": "call", "strike": 100.0, "maturity": 0.25}],
    "mc": {"paths": 256, "steps_per_year": 12, "seed": 1, "greeks": False},
}
RESULT_FILES = {"summary.json", "report.html", "prices.parquet", MARKER}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (what a user would lose)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(args, capsys) -> tuple[int, list[str]]:
    code = main(["run", *map(str, args), "--no-progress"])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "p.yaml").write_text(yaml.safe_dump(CONFIG))
    (folder / "precious.txt").write_text("a year of notes\n")
    return folder


def test_out_dot_in_a_folder_with_the_users_files_is_refused_and_touches_nothing(user_folder, capsys, monkeypatch):
    monkeypatch.chdir(user_folder)
    before = snapshot(user_folder.parent)
    code, err = run(["p.yaml", "--out", "."], capsys)
    assert code == 2
    assert err == ["error: --out .: exists and is not a riskengine result; choose another directory"]
    assert snapshot(user_folder.parent) == before
    assert sorted(p.name for p in user_folder.parent.iterdir()) == ["work"]  # no checkpoint, no temp


def test_out_set_to_the_configs_own_folder_is_refused(user_folder, capsys):
    before = snapshot(user_folder)
    code, err = run([user_folder / "p.yaml", "--out", user_folder], capsys)
    assert code == 2 and err == [f"error: --out {user_folder}: exists and is not a riskengine result; choose another directory"]
    assert snapshot(user_folder) == before


def test_out_pointing_at_a_file_is_refused_and_the_file_kept(user_folder, capsys):
    target = user_folder / "precious.txt"
    code, err = run([user_folder / "p.yaml", "--out", target], capsys)
    assert code == 2 and len(err) == 1 and "exists and is not a directory" in err[0]
    assert target.read_text() == "a year of notes\n"


def test_absent_and_empty_folders_are_used_and_a_previous_result_replaced_alone(user_folder, capsys):
    config = user_folder / "p.yaml"
    out = user_folder / "new" / "deeper"
    assert run([config, "--out", out], capsys)[0] == 0
    assert {p.name for p in out.iterdir()} == RESULT_FILES
    marker = json.loads((out / MARKER).read_text())
    assert marker["job"] == "price" and set(marker["files"]) == RESULT_FILES - {MARKER}
    # a user's file put beside a previous result survives the next run into it
    (out / "my_notes.md").write_text("keep me")
    first = json.loads((out / "summary.json").read_text())
    assert run([config, "--out", out, "--seed", "7"], capsys)[0] == 0
    assert (out / "my_notes.md").read_text() == "keep me"
    assert {p.name for p in out.iterdir()} == RESULT_FILES | {"my_notes.md"}
    second = json.loads((out / "summary.json").read_text())
    assert (first["seed"], second["seed"]) == (1, 7)
    # an empty folder is used as it is
    empty = user_folder / "empty"
    empty.mkdir()
    code, err = run([config, "--out", empty], capsys)
    assert code == 0, err
    assert {p.name for p in empty.iterdir()} == RESULT_FILES
    assert (user_folder / "precious.txt").read_text() == "a year of notes\n"


def test_a_marker_cannot_point_outside_its_folder(user_folder, capsys):
    out = user_folder / "out"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"files": ["../precious.txt", "/etc/passwd", ".", ".."]}))
    assert run([user_folder / "p.yaml", "--out", out], capsys)[0] == 0
    assert (user_folder / "precious.txt").read_text() == "a year of notes\n"
    assert {p.name for p in out.iterdir()} == RESULT_FILES


def test_a_foreign_checkpoint_named_folder_is_not_deleted(user_folder, capsys):
    foreign = user_folder / "out.checkpoint"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("chapter 1")
    code, err = run([user_folder / "p.yaml", "--out", user_folder / "out"], capsys)
    assert code == 2 and len(err) == 1 and "not a riskengine checkpoint" in err[0]
    assert (foreign / "thesis.tex").read_text() == "chapter 1"
    assert not (user_folder / "out").exists()


def test_output_folders_get_the_users_umask(user_folder, capsys):
    old = os.umask(0o022)
    try:
        out = user_folder / "shared_out"
        assert run([user_folder / "p.yaml", "--out", out], capsys)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "summary.json").stat().st_mode) == 0o644


def test_a_rejected_run_creates_no_parent_folders(user_folder, capsys):
    bad = dict(CONFIG, mc={**CONFIG["mc"], "paths": 1})
    (user_folder / "bad.yaml").write_text(yaml.safe_dump(bad))
    code, err = run([user_folder / "bad.yaml", "--out", user_folder / "a" / "b" / "c"], capsys)
    assert code == 2 and len(err) == 1 and "mc.paths" in err[0]
    assert not (user_folder / "a").exists()


def test_a_killed_runs_temporary_folder_is_cleaned_by_the_next_run(user_folder, capsys):
    dead = 2**22 + 12345  # above pid_max's default: no such process
    stale = user_folder / f".out.tmp-{dead}-abc"
    stale.mkdir()
    (stale / "summary.json").write_text("{}")
    assert run([user_folder / "p.yaml", "--out", user_folder / "out"], capsys)[0] == 0
    assert not stale.exists()
    assert sorted(p.name for p in user_folder.iterdir()) == ["out", "p.yaml", "precious.txt"]


def test_a_full_filesystem_is_one_line_exit_2_and_leaves_nothing(user_folder, capsys, monkeypatch):
    import riskengine.report.output as output

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(output, "write_json", full)
    before = snapshot(user_folder)
    code, err = run([user_folder / "p.yaml", "--out", user_folder / "out"], capsys)
    assert code == 2 and err == [f"error: --out {user_folder / 'out'}: cannot write: No space left on device"]
    assert snapshot(user_folder) == before
    assert sorted(p.name for p in user_folder.iterdir()) == ["p.yaml", "precious.txt"]


def test_an_unexpected_exception_is_one_internal_line_exit_1_and_no_debris(user_folder, capsys, monkeypatch):
    from riskengine.jobs import price

    def broken(*args, **kwargs):
        raise RuntimeError("boom\n" + "x" * 10_000)

    monkeypatch.setattr(price.PriceJob, "run", broken)
    code, err = run([user_folder / "p.yaml", "--out", user_folder / "x" / "out"], capsys)
    assert code == 1 and len(err) == 1
    assert err[0].startswith("error: internal: RuntimeError: boom") and err[0].endswith("; please report")
    assert len(err[0]) < 320
    assert sorted(p.name for p in user_folder.iterdir()) == ["p.yaml", "precious.txt"]


def test_a_calibration_that_does_not_converge_says_so_on_the_terminal(user_folder, capsys, monkeypatch):
    from riskengine.jobs import price

    real = price.PriceJob.run

    def unconverged(self, config, context):
        result = real(self, config, context)
        result.summary["fits"] = {"heston": {"converged": False}, "black": {"converged": True}}
        return result

    monkeypatch.setattr(price.PriceJob, "run", unconverged)
    code, err = run([user_folder / "p.yaml", "--out", user_folder / "out"], capsys)
    assert code == 0
    assert err == ["warning: fits.heston: did not converge (see summary.json)"]
