"""Fixtures shared by the SimplerEnv-robot scene tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_real_env(simpler_assets, mesh_cache, monkeypatch):
    """``make(cls, task, **kw)``: a scene env on the shared asset pack and converted-mesh cache,
    closed after the test."""
    monkeypatch.setenv("VLA_EVAL_CACHE", str(mesh_cache))
    envs = []

    def make(cls, task, **kw):
        env = cls(task, **kw)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()
