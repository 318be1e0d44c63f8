"""Each backend's ``backend_options`` are a typed model; a bad suite gets one line naming file, field and value."""

from __future__ import annotations

from typing import get_args

import pandas as pd
import pytest

from vla_eval.backends import get_backend
from vla_eval.errors import ConfigError
from vla_eval.spec import SuiteSpec, load_suite


def _with_options(suite: str, options: dict) -> SuiteSpec:
    data = load_suite(suite).model_dump(mode="json")
    data["backend_options"] = options
    return SuiteSpec.model_validate(data)


@pytest.mark.parametrize(
    "suite, options, expected",
    [
        (
            "simpler_google_vm_panda",
            {"protocol": "visual_match"},
            "field 'backend_options.protocol': Input should be 'visual_matching' or 'variant_aggregation', "
            "got 'visual_match'",
        ),
        (
            "simpler_google_vm_panda",
            {"extension": "yes"},
            "field 'backend_options.extension': Input should be a valid boolean",
        ),
        (
            "simpler_google_vm_panda",
            {"task_groups": {"drawers": "google_open_top_drawer"}},
            "field 'backend_options.task_groups.drawers': Input should be a valid list",
        ),
        (
            "simpler_google_vm_panda",
            {"gripper": "absolut", "speed": 2},
            "field 'backend_options': unknown option(s) ['speed'], expected ['exclude_from_aggregate', 'extension', "
            "'gripper', 'protocol', 'task_groups']; field 'backend_options.gripper'",
        ),
        (
            "simpler_bridge_vm_real",
            {"render_scale": True},
            "field 'backend_options.render_scale': expected a number in",
        ),
        (
            "tabletop_basic",
            {"render_quality": "fast"},
            "field 'backend_options': unknown option(s) ['render_quality'], "
            "expected none (this backend takes no options)",
        ),
    ],
)
def test_bad_options_are_one_line_naming_file_field_and_value(suite, options, expected):
    spec = _with_options(suite, options)
    with pytest.raises(ConfigError) as err:
        get_backend(spec.backend).validate_suite(spec, "suites/mine.yaml")
    message = str(err.value)
    assert message.startswith("suites/mine.yaml: ") and "\n" not in message
    assert expected in message


def test_options_come_back_typed_with_defaults_filled_in():
    spec = load_suite("simpler_google_va")
    opts = get_backend("simpler").options(spec)
    assert opts.protocol == "variant_aggregation" and opts.gripper == "auto" and opts.extension is False
    assert opts.exclude_from_aggregate == ["camera_a", "camera_b"]
    real = get_backend("simpler_real").options(_with_options("simpler_bridge_vm_real", {"render_scale": 1}))
    assert real.render_scale == 1.0 and isinstance(real.render_scale, float) and real.task_groups == {}


def test_simpler_gripper_choices_are_the_envs_modes():
    from vla_eval.sims.simpler.backend import SimplerOptions
    from vla_eval.sims.simpler.env import GRIPPER_MODES

    assert get_args(SimplerOptions.model_fields["gripper"].annotation) == ("auto", *GRIPPER_MODES)


def test_libero_reports_the_fixture_seed_in_force_even_when_the_suite_omits_it():
    from vla_eval.sims.libero.backend import LiberoOptions

    spec = SuiteSpec.model_validate(
        {
            "name": "t",
            "backend": "libero",
            "backend_options": {"suite": "libero_goal"},
            "tasks": ["any"],
            "episodes_per_task": 1,
            "max_steps": 10,
        }
    )
    assert get_backend("libero").protocol_facts(spec) == {"fixture_seed": 0}
    per_episode = LiberoOptions.model_validate({"suite": "libero_goal", "fixture_seed": "per_episode"})
    assert per_episode.fixture_seed == "per_episode"
    assert get_backend("tabletop").protocol_facts(load_suite("tabletop_basic")) == {}


def test_simpler_protocol_table_carries_the_headline_the_leaderboard_shows():
    spec = load_suite("simpler_google_vm_panda")
    splits = [s.name for s in spec.splits]
    rows = [{"task": "google_pick_coke_can_vertical", "split": s, "n": 10, "successes": 8, "rate": 0.8} for s in splits]
    rows += [{"task": "google_open_top_drawer", "split": s, "n": 10, "successes": 4, "rate": 0.4} for s in splits]
    (table,) = get_backend("simpler").protocol_tables(spec, pd.DataFrame(rows))
    assert table.headline == pytest.approx(0.6)  # mean of the groups "pick coke can" 80% and "open drawer" 40%
    assert table.headline_label == "SimplerEnv-style aggregate % (mean over task groups)"
    assert ("group: open drawer", "40.0", str(len(splits)), str(10 * len(splits))) in table.rows
    assert get_backend("tabletop").protocol_tables(load_suite("tabletop_basic"), pd.DataFrame(rows)) == []
