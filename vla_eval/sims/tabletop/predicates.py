"""Success predicates, bound once to a compiled model and evaluated on ``MjData`` every step."""

from __future__ import annotations

import mujoco
import numpy as np

from vla_eval.sims.tabletop.scene import InRegion, JointAtLeast, OnTop, SceneSpec, SuccessSpec


class Predicate:
    def __call__(self, data: mujoco.MjData) -> bool:
        raise NotImplementedError


class OnTopPredicate(Predicate):
    """In contact with the support, centre above it and inside its footprint (LIBERO's ``On``)."""

    def __init__(self, model: mujoco.MjModel, scene: SceneSpec, spec: OnTop):
        self.obj = model.body(spec.object).id
        self.support = model.body(spec.support).id
        self.obj_geoms = {g for g in range(model.ngeom) if model.geom_bodyid[g] == self.obj}
        self.support_geoms = {g for g in range(model.ngeom) if model.geom_bodyid[g] == self.support}
        support = scene.object(spec.support)
        self.radius = support.size[0] if support.shape != "box" else min(support.size[:2])

    def __call__(self, data):
        obj, sup = data.xpos[self.obj], data.xpos[self.support]
        if np.linalg.norm(obj[:2] - sup[:2]) > self.radius or obj[2] <= sup[2]:
            return False
        for c in data.contact[: data.ncon]:
            pair = {int(c.geom1), int(c.geom2)}
            if pair & self.obj_geoms and pair & self.support_geoms:
                return True
        return False


class InRegionPredicate(Predicate):
    """Centre within ``radius`` of the region's centre (xy) and resting low (not held in the air)."""

    def __init__(self, model, scene: SceneSpec, spec: InRegion):
        self.obj = model.body(spec.object).id
        self.region = model.body(spec.region).id
        self.radius = spec.radius
        self.max_z = scene.object(spec.object).half_height + 0.01

    def __call__(self, data):
        obj, reg = data.xpos[self.obj], data.xpos[self.region]
        return bool(np.linalg.norm(obj[:2] - reg[:2]) <= self.radius and obj[2] <= self.max_z)


class JointAtLeastPredicate(Predicate):
    def __init__(self, model, scene: SceneSpec, spec: JointAtLeast):
        try:
            self.qadr = model.joint(spec.joint).qposadr[0]
        except KeyError:
            raise ValueError(
                f"scene {scene.name!r}: field 'success.joint': no joint named {spec.joint!r} in the model"
            ) from None
        self.value = spec.value

    def __call__(self, data):
        return bool(data.qpos[self.qadr] >= self.value)


_KINDS = {"on_top": OnTopPredicate, "in_region": InRegionPredicate, "joint_at_least": JointAtLeastPredicate}


def make_predicate(model: mujoco.MjModel, scene: SceneSpec, spec: SuccessSpec | None = None) -> Predicate:
    spec = spec or scene.success
    return _KINDS[spec.type](model, scene, spec)
