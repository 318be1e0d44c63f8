"""Hostile-input regression tests (issue 29, items 2, 7, 8, 9, 10, 11): each case once broke the harness.

The rule they hold: bad input is exit 2 with one line naming the file, field or value, never a
traceback, and never exit 1 (which ``check`` and ``run --gate`` reserve for "significant regression").
"""

from __future__ import annotations

import copy
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_hostile import _cli, _env, _fixture_run, _suite

from vla_eval.cli.main import main

CELLS = {("t1", "in_domain"): (7, 10), ("t2", "in_domain"): (8, 10)}


def _one_line_error(err: str, *needles: str) -> None:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: "), err
    for n in needles:
        assert n in lines[-1], (n, lines[-1])


@pytest.fixture
def base_run(tmp_path):
    run = _fixture_run(tmp_path, "run", CELLS)
    assert main(["baseline", "save", str(run), "-o", str(tmp_path / "base.json")]) == 0
    return run, json.loads((tmp_path / "base.json").read_text())


# ------------------------------------------------------------------ 2. bad input is never a regression


def _mutate(data: dict, how: str) -> str:
    d = copy.deepcopy(data)
    if how == "splits_int":
        d["splits"] = 5
    elif how == "splits_nested":
        d["splits"] = [["in_domain"]]
    elif how == "policy_int":
        d["policy"] = 5
    elif how == "task_max_steps_list":
        d["protocol"]["task_max_steps"] = [1, 2]
    elif how == "huge_count":
        return json.dumps(d).replace('"episodes": 10', '"episodes": 1' + "0" * 400, 1)
    elif how == "deep_brackets":
        return json.dumps(d)[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    elif how == "run_id_list":
        d["run_id"] = ["x"]
    return json.dumps(d)


@pytest.mark.parametrize(
    "how, field",
    [
        ("splits_int", "'splits'"),
        ("splits_nested", "'splits'"),
        ("policy_int", "'policy'"),
        ("task_max_steps_list", "task_max_steps"),
        ("huge_count", "counts["),
        ("deep_brackets", "nested too deeply"),
        ("run_id_list", "'run_id'"),
    ],
)
def test_2_malformed_baseline_is_bad_input_not_a_regression(tmp_path, capsys, base_run, how, field):
    run, data = base_run
    bad = tmp_path / f"{how}.json"
    bad.write_text(_mutate(data, how))
    assert main(["check", str(run), "--baseline", str(bad)]) == 2
    _one_line_error(capsys.readouterr().err, str(bad), field)


@pytest.mark.parametrize("how", ["truncate", "zero_header"])
def test_2_damaged_store_is_bad_input_for_check(tmp_path, capsys, base_run, how):
    run, _ = base_run
    db = run / "episodes.sqlite"
    raw = db.read_bytes()
    db.write_bytes(raw[: len(raw) // 2] if how == "truncate" else b"\0" * 100 + raw[100:])
    assert main(["check", str(run), "--baseline", str(tmp_path / "base.json")]) == 2
    _one_line_error(capsys.readouterr().err, str(db))


def test_2_baseline_task_outside_the_suite_does_not_advise_resume(tmp_path, capsys, base_run):
    run, data = base_run
    data["counts"]["in_domain"]["not_in_suite"] = {"episodes": 5, "successes": 2}
    bad = tmp_path / "extra.json"
    bad.write_text(json.dumps(data))
    assert main(["check", str(run), "--baseline", str(bad)]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, "not_in_suite/in_domain", "cannot add them")
    assert "finish it with --resume" not in err


def test_2_gated_run_with_a_malformed_baseline_exits_2_before_any_episode(tmp_path):
    suite = _suite(tmp_path, episodes_per_task=1)
    assert (
        _cli(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "noop",
                "--run-dir",
                str(tmp_path / "r0"),
                "--workers",
                "1",
                "--no-progress",
            ],
            tmp_path,
        ).returncode
        == 0
    )
    assert main(["baseline", "save", str(tmp_path / "r0"), "-o", str(tmp_path / "b.json")]) == 0
    data = json.loads((tmp_path / "b.json").read_text())
    data["splits"] = 5
    (tmp_path / "b.json").write_text(json.dumps(data))
    p = _cli(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "noop",
            "--run-dir",
            str(tmp_path / "r1"),
            "--workers",
            "1",
            "--no-progress",
            "--gate",
            str(tmp_path / "b.json"),
        ],
        tmp_path,
    )
    assert p.returncode == 2, p.stderr
    _one_line_error(p.stderr, "'splits'")


def test_10_gate_max_drop_that_leaves_no_room_to_detect_is_refused(tmp_path, capsys, base_run):
    suite = _suite(tmp_path)
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "noop",
                "--run-dir",
                str(tmp_path / "g"),
                "--gate",
                str(tmp_path / "base.json"),
                "--max-drop",
                "0.999",
            ]
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, "--max-drop 0.999")
    assert not (tmp_path / "g" / "episodes.sqlite").exists()


# ------------------------------------------------------------------ 8. corrupt stores: every command agrees


def _damage(db: Path, how: str) -> str:
    """Damage the store; returns what the error must name."""
    raw = db.read_bytes()
    if how == "truncated":
        db.write_bytes(raw[:4096])
    elif how == "zero_header":
        db.write_bytes(b"\0" * 100 + raw[100:])
    elif how == "overwritten":
        db.write_bytes(raw[:8192] + os.urandom(len(raw) - 8192))
    else:
        conn = sqlite3.connect(db)
        rowid, task = conn.execute("SELECT rowid, task FROM episodes ORDER BY rowid DESC LIMIT 1").fetchone()
        if how == "row_not_json":
            conn.execute("UPDATE episodes SET record='{not json' WHERE rowid=?", (rowid,))
        else:
            conn.execute("UPDATE episodes SET record=json_set(record, '$.steps', 'many') WHERE rowid=?", (rowid,))
        conn.commit()
        conn.close()
        return f"row {rowid} ({task}/"
    return str(db)


@pytest.mark.parametrize("how", ["truncated", "zero_header", "overwritten", "row_not_json", "row_wrong_type"])
def test_8_table_names_the_damage_in_a_corrupt_store(tmp_path, capsys, how):
    run = _fixture_run(tmp_path, "run", CELLS)
    needle = _damage(run / "episodes.sqlite", how)
    assert main(["table", str(run)]) == 2
    _one_line_error(capsys.readouterr().err, needle)


@pytest.mark.parametrize("how", ["truncated", "row_not_json"])
def test_8_resume_refuses_a_corrupt_store_before_running_anything(tmp_path, how):
    suite = _suite(tmp_path, episodes_per_task=2)
    args = [
        "run",
        "--suite",
        str(suite),
        "--policy",
        "noop",
        "--run-dir",
        str(tmp_path / "r"),
        "--workers",
        "1",
        "--no-progress",
    ]
    assert _cli(args, tmp_path).returncode == 0
    needle = _damage(tmp_path / "r" / "episodes.sqlite", how)
    p = _cli([*args, "--resume"], tmp_path)
    assert p.returncode == 2, p.stderr
    _one_line_error(p.stderr, needle)


# ------------------------------------------------------------------ 7. workers die with their driver; Ctrl-C is quiet


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_long_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """``run --workers 2`` with episodes far longer than the test; returns the driver and its two workers."""
    suite = _suite(tmp_path, episodes_per_task=4, max_steps=200_000)
    # output to files: a pipe would stay open while an orphaned worker lives, and hide it
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vla_eval",
                "run",
                "--suite",
                str(suite),
                "--policy",
                "noop",
                "--workers",
                "2",
                "--run-dir",
                str(tmp_path / "r"),
                "--no-progress",
            ],
            cwd=tmp_path,
            env=_env(),
            stdout=out,
            stderr=err,
            start_new_session=True,
            # a shell running the tests in the background starts them with SIGINT ignored, and an ignored
            # signal stays ignored across exec: give the run the terminal's default, as a user's shell does
            preexec_fn=_default_sigint,
        )
    deadline = time.monotonic() + 90
    workers: list[int] = []
    while time.monotonic() < deadline:
        workers = [p for p in _children(proc.pid) if b"spawn_main" in (Path("/proc") / str(p) / "cmdline").read_bytes()]
        if len(workers) == 2 and (tmp_path / "r" / "episodes.sqlite").exists():
            time.sleep(3)  # let both reach their episode loop
            return proc, workers
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the run did not start two workers within 90 s")


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_7_workers_die_with_their_driver(tmp_path, sig):
    proc, workers = _start_long_run(tmp_path)
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        assert _gone_within(workers, 5), f"workers {workers} outlived their driver (signal {sig.name})"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_7_ctrl_c_is_one_line_and_ends_the_workers(tmp_path):
    proc, workers = _start_long_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
        proc.wait(timeout=60)
        err = (tmp_path / "err.txt").read_text()
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert "interrupted" in err
        assert _gone_within(workers, 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


# ------------------------------------------------------------------ 9. a full disk


def test_9_full_disk_mid_run_is_one_line_and_keeps_what_finished(tmp_path, capsys, monkeypatch):
    from vla_eval.store import RunStore

    real_open = RunStore._open

    class FullAfterTwo:
        """The store's connection; the third episode's INSERT finds the disk full."""

        def __init__(self, conn):
            self._conn, self.inserts = conn, 0

        def execute(self, sql, *args):
            if sql.startswith("INSERT OR REPLACE INTO episodes"):
                self.inserts += 1
                if self.inserts > 2:
                    raise sqlite3.OperationalError("database or disk is full")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def __enter__(self):
            return self._conn.__enter__()

        def __exit__(self, *exc):
            return self._conn.__exit__(*exc)

    def open_full(self, readonly):
        real_open(self, readonly)
        if not readonly:
            self._conn = FullAfterTwo(self._conn)

    monkeypatch.setattr(RunStore, "_open", open_full)
    suite = _suite(tmp_path, episodes_per_task=5)
    run_dir = tmp_path / "r"
    assert (
        main(
            [
                "run",
                "--suite",
                str(suite),
                "--policy",
                "noop",
                "--run-dir",
                str(run_dir),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    _one_line_error(capsys.readouterr().err, "disk is full", "--resume")
    monkeypatch.setattr(RunStore, "_open", real_open)
    with RunStore(run_dir, readonly=True) as store:
        assert store.count() == 2


def test_9_full_disk_at_start_is_one_line(tmp_path, capsys, monkeypatch):
    from vla_eval.store import RunStore

    def full(self, readonly):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(RunStore, "_open", full)
    assert main(["run", "--suite", str(_suite(tmp_path)), "--policy", "noop", "--run-dir", str(tmp_path / "r")]) == 2
    _one_line_error(capsys.readouterr().err, "disk is full")


def test_9_run_json_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    real_write = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == "run.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    assert main(["run", "--suite", str(_suite(tmp_path)), "--policy", "noop", "--run-dir", str(tmp_path / "r")]) == 2
    _one_line_error(capsys.readouterr().err, "run.json", "No space left on device")


def test_9_video_cut_short_by_a_full_disk_leaves_no_file_and_no_path(tmp_path):
    from vla_eval.store import RunStore

    suite = _suite(tmp_path, episodes_per_task=2)
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "_enospc"), _env()["PYTHONPATH"]])}
    p = _cli(
        [
            "run",
            "--suite",
            str(suite),
            "--policy",
            "noop",
            "--run-dir",
            str(tmp_path / "r"),
            "--workers",
            "1",
            "--videos",
            "all",
            "--no-progress",
        ],
        tmp_path,
        **env,
    )
    assert p.returncode == 0, p.stderr
    assert not list((tmp_path / "r").rglob("*.mp4")), "a truncated video was left behind"
    with RunStore(tmp_path / "r", readonly=True) as store:
        records = list(store.records())
    assert len(records) == 2
    assert all(r.video_path is None for r in records)
    assert all("No space left" in r.extras["video_error"] for r in records)


# ------------------------------------------------------------------ 10. values that make no sense


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("max_steps", True, "boolean"),
        ("max_steps", float("inf"), "finite"),
        ("settle_action", [float("nan"), 0, 0, 0, 0, 0, -1], "finite"),
    ],
)
def test_10_suite_numbers_must_be_finite_and_not_booleans(tmp_path, capsys, field, value, needle):
    suite = _suite(tmp_path, **{field: value})
    assert main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and field in err and needle in err, err


def test_10_policy_execution_numbers_must_be_finite():
    from pydantic import ValidationError

    from vla_eval.policy_config import ExecutionConfig

    with pytest.raises(ValidationError, match="finite"):
        ExecutionConfig(temporal_ensemble=float("inf"))
    with pytest.raises(ValidationError, match="boolean"):
        ExecutionConfig(replan_steps=True)


@pytest.mark.parametrize("args", [["--ratio", "nan"], ["--delta", "1e-9"]])
def test_10_plan_episodes_refuses_nonsense(capsys, args):
    argv = ["plan-episodes", "--p0", "0.8", "--delta", "0.1", *args]
    assert main(argv) == 2
    _one_line_error(capsys.readouterr().err, args[0])


def test_10_record_demos_refuses_nan_noise(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["record-demos", "--action-noise", "nan", "-o", str(tmp_path / "d")])
    assert exc.value.code == 2
    assert "--action-noise must be a finite number" in capsys.readouterr().err


# ------------------------------------------------------------------ 11. output paths


def test_11_baseline_save_onto_a_folder_is_one_line(tmp_path, capsys):
    run = _fixture_run(tmp_path, "run", CELLS)
    (tmp_path / "out").mkdir()
    assert main(["baseline", "save", str(run), "-o", str(tmp_path / "out")]) == 2
    _one_line_error(capsys.readouterr().err, str(tmp_path / "out"))


def test_11_read_only_target_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes through read-only modes")
    run = _fixture_run(tmp_path, "run", CELLS)
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert main(["baseline", "save", str(run), "-o", str(ro / "b.json")]) == 2
    _one_line_error(capsys.readouterr().err, str(ro / "b.json"))


def test_10_a_300_character_split_name_is_refused(tmp_path, capsys):
    suite = _suite(tmp_path, splits=[{"name": "s" * 300}])
    assert main(["run", "--suite", str(suite), "--policy", "noop", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "splits.0.name" in err and "100 characters" in err, err


def test_11_report_and_canary_onto_the_wrong_kind_of_path_are_one_line(tmp_path, capsys):
    run = _fixture_run(tmp_path / "root", "run", CELLS)
    (tmp_path / "file").write_text("")
    assert main(["report", str(run.parent), "-o", str(tmp_path / "file")]) == 2
    _one_line_error(capsys.readouterr().err, str(tmp_path / "file"))


@pytest.mark.parametrize("arg", ["chunk_size=true", "scale=.nan", "chunk_size=.inf"])
def test_10_policy_args_declared_numbers_must_be_finite_numbers(arg):
    """``int(True)`` is 1: ``chunk_size=true`` ran silently with a chunk of one; NaN scales drew NaN actions."""
    from vla_eval.errors import ConfigError
    from vla_eval.policy_config import resolve_policy

    with pytest.raises(ConfigError, match=f"argument '{arg.split('=')[0]}': expected a finite number"):
        resolve_policy("random", [arg])
    assert resolve_policy("random", ["chunk_size=2", "scale=0.5"]).args == {"chunk_size": 2, "scale": 0.5}


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["canary", "--frames-only", "--json", "{dir}"], "--json {dir}: is a folder"),
        (["baseline", "save", "{dir}", "-o", "{dir}"], "--output {dir}: is a folder"),
        (["compare", "{dir}", "{dir}", "--json", "{dir}"], "--json {dir}: is a folder"),
        (["report", "{dir}", "-o", "{file}"], "--output {file}: is a file, expected a folder"),
        (
            ["record-demos", "--suite", "tabletop_basic", "--policy", "scripted", "-o", "{file}"],
            "--output {file}: is a file",
        ),
        (
            ["doctor", "--suite", "tabletop_basic", "--policy", "scripted", "--out", "{file}/x"],
            "--out {file}/x: {file} is a file, so nothing can be created under it",
        ),
        (["assets", "fetch", "simpler", "--dest", "{file}"], "--dest {file}: is a file, expected a folder"),
    ],
)
def test_11_output_paths_are_checked_before_any_work(tmp_path, capsys, argv, expected):
    """Issue 29 item 11: a wrong output path is one line and exit 2 before the command starts its work
    (the canary used to render and roll out for a minute before failing on ``--json DIR``)."""
    from vla_eval.cli.main import main

    folder, file = tmp_path / "adir", tmp_path / "afile"
    folder.mkdir()
    file.write_text("x")
    args = [a.format(dir=folder, file=file) for a in argv]
    t0 = time.monotonic()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected.format(dir=folder, file=file) in err and "Traceback" not in err
    assert time.monotonic() - t0 < 10
