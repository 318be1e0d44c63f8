"""Plant one deliberate bug at a time, run the tests that should catch it, revert; prints a Markdown table.

Run from the repository root: `python tools/plant_bugs.py [INDEX ...]`. Used for issue 17 (docs/testing.md)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BREAKS = [
    (
        "resume: done keys ignore the split",
        "vla_eval/execution/runner.py",
        "todo = [item for item in plan if item.key not in done]",
        "todo = [item for item in plan if (item.task, item.episode_index) not in {(t, i) for t, _, i in done}]",
        "tests/execution/test_run_integrity.py::test_resume_across_splits_equals_an_uninterrupted_run",
    ),
    (
        "resume: protocol ignores the policy block",
        "vla_eval/execution/runner.py",
        '"policy": policy_block,',
        '"policy": None,',
        "tests/execution/test_run_integrity.py::test_resume_refuses_another_policy_or_policy_args "
        "tests/execution/test_run_integrity.py::test_resume_refuses_another_checkpoint_or_a_changed_one",
    ),
    (
        "resume: checkpoint fingerprint not compared",
        "vla_eval/execution/runner.py",
        "            if stored != current:",
        "            if False:",
        "tests/execution/test_run_integrity.py::test_resume_refuses_another_checkpoint_or_a_changed_one",
    ),
    (
        "check/compare: errored episodes dropped from the counts",
        "vla_eval/results/compare.py",
        '    g = df.groupby(["task", "split"], sort=False)["success"]',
        '    df = df[~df["termination"].isin(["policy_error", "env_error"])]\n'
        '    g = df.groupby(["task", "split"], sort=False)["success"]',
        "tests/results/test_results_real_runs.py",
    ),
    (
        "chunks: --replan-steps ignored",
        "vla_eval/execution/runner.py",
        "            replan_steps=replan,",
        "            replan_steps=None,",
        "tests/execution/test_run_integrity.py::test_replan_steps_flag_reaches_the_rollout "
        "tests/execution/test_run_integrity.py::test_execution_block_of_a_policy_file_and_policy_arg_reach_the_rollout",
    ),
    (
        "chunks: executor ignores replan_steps",
        "vla_eval/actions/convert.py",
        "return self.replan_steps is not None and self._since_plan >= self.replan_steps",
        "return False",
        "tests/execution/test_rollout.py",
    ),
    (
        "chunks: temporal ensemble weights newest first",
        "vla_eval/actions/convert.py",
        "w = np.exp(-self.temporal_ensemble * np.arange(len(live)))",
        "w = np.exp(-self.temporal_ensemble * np.arange(len(live))[::-1])",
        "tests/execution/test_rollout.py",
    ),
    (
        "termination: timeout one step late",
        "vla_eval/execution/rollout.py",
        'elif self.stats["steps"] >= self.max_steps:',
        'elif self.stats["steps"] > self.max_steps:',
        "tests/execution/test_rollout.py",
    ),
    (
        "env: eef_quat emitted as xyzw",
        "vla_eval/sims/tabletop/env.py",
        '"eef_quat": quat.astype(np.float32),',
        '"eef_quat": quat[[1, 2, 3, 0]].astype(np.float32),',
        "tests/sims/tabletop/test_tabletop_conventions.py",
    ),
    (
        "env: push_block success radius doubled",
        "vla_eval/sims/tabletop/predicates.py",
        "        self.radius = spec.radius\n",
        "        self.radius = 2 * spec.radius\n",
        "tests/sims/tabletop/test_tabletop_conventions.py",
    ),
    (
        "env: drawer threshold moved 1 cm (scene file)",
        "envs/scenes/open_drawer.yaml",
        "value: 0.12}",
        "value: 0.13}",
        "tests/sims/tabletop/test_tabletop_conventions.py",
    ),
    (
        "env: plate footprint from the wrong size field",
        "vla_eval/sims/tabletop/predicates.py",
        "self.radius = support.size[0] if support.shape",
        "self.radius = 2 * support.size[0] if support.shape",
        "tests/sims/tabletop/test_tabletop_conventions.py",
    ),
    (
        "remote: server decodes the quaternion as xyzw",
        "vla_eval/remote/obs_format.py",
        '"eef_quat": np.array([q[3], q[0], q[1], q[2]]),',
        '"eef_quat": np.array(q),',
        "tests/remote/test_obs_format.py",
    ),
    (
        "table: OOD drop sign flipped",
        "vla_eval/tables.py",
        "drops.append(f\"{100 * (lookup.loc[(task, in_domain)]['rate'] - r['rate']):+.1f}\")",
        "drops.append(f\"{100 * (r['rate'] - lookup.loc[(task, in_domain)]['rate']):+.1f}\")",
        "tests/results/test_results_real_runs.py::test_run_table_drop_value_and_sign",
    ),
    (
        "report: OOD drop sign flipped",
        "vla_eval/results/report_render.py",
        'cells.append((f"{_pct(r)} ({100 * (r[0] - idr[0]):+.1f})"',
        'cells.append((f"{_pct(r)} ({100 * (idr[0] - r[0]):+.1f})"',
        "tests/results/test_results_real_runs.py::test_report_leaderboard_values_and_drop_sign",
    ),
    (
        "report: run id not escaped in the run section",
        "vla_eval/results/report_render.py",
        "<h3>{esc(i.run_id)}</h3>",
        "<h3>{i.run_id}</h3>",
        "tests/results/test_results_real_runs.py::test_every_user_written_field_is_escaped",
    ),
    (
        "report: instruction not escaped (markdown)",
        "vla_eval/results/report_render.py",
        'first = md_esc(cells[0]) + (f" — {md_esc(instr)}" if instr else "")',
        'first = md_esc(cells[0]) + (f" — {instr}" if instr else "")',
        "tests/results/test_results_real_runs.py::test_every_user_written_field_is_escaped",
    ),
    (
        "store: synchronous NORMAL",
        "vla_eval/store.py",
        'self._conn.execute("PRAGMA synchronous=FULL")',
        'self._conn.execute("PRAGMA synchronous=NORMAL")',
        "tests/execution/test_run_integrity.py::test_store_connection_is_wal_with_full_sync "
        "tests/execution/test_run_integrity.py::test_runner_writes_through_a_durable_connection",
    ),
]
only = sys.argv[1:]
rows = []
for i, (name, file, old, new, tests) in enumerate(BREAKS):
    if only and str(i) not in only:
        continue
    path = ROOT / file
    text = path.read_text()
    assert text.count(old) == 1, (name, old)
    path.write_text(text.replace(old, new))
    try:
        res = subprocess.run(
            ["nice", "-n", "10", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests.split()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl"},
        )
    finally:
        path.write_text(text)
    failed = [line for line in res.stdout.splitlines() if line.startswith("FAILED")]
    rows.append(
        (
            name,
            file,
            "CAUGHT" if res.returncode != 0 else "MISSED",
            failed[0][7:] if failed else res.stdout.strip().splitlines()[-1],
        )
    )
    print(f"| {rows[-1][0]} | `{rows[-1][1]}` | {rows[-1][2]} | {rows[-1][3][:150]} |", flush=True)
