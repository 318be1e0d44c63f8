"""Fixture runs: EpisodeRecords written into RunStore folders with a realistic config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vla_eval.record import EpisodeRecord
from vla_eval.store import RunStore


def suite_dict(name="tabletop_basic", tasks=("pick_cube", "open_drawer"), ood=("lighting",), episodes=50,
               max_steps=220, settle_steps=10, image_size=(128, 128), render_quality=None, backend="mujoco_scenes", seed=0):
    splits = [{"name": "in_domain", "out_of_domain": False, "perturbations": [], "description": ""}]
    splits += [{"name": s, "out_of_domain": True, "perturbations": [{"kind": s, "scale": 0.5}], "description": ""} for s in ood]
    options = {} if render_quality is None else {"render_quality": render_quality}
    return {
        "name": name, "description": "", "backend": backend,
        "tasks": [{"name": t, "max_steps": None} for t in tasks],
        "splits": splits, "episodes_per_task": episodes, "max_steps": max_steps, "settle_steps": settle_steps,
        "settle_action": [0, 0, 0, 0, 0, 0, -1], "cameras": ["agentview", "wrist"], "image_size": list(image_size),
        "seed": seed, "backend_options": options,
    }


def make_run(root: Path, name: str, counts: dict, *, suite: dict | None = None, policy="vla_r1", checkpoint="ckpt-aaaa1111",
             created_at="2025-06-01T12:00:00+00:00", instruction="pick up the {task}", videos=False, order_seed=0,
             adapter="vla_r1", versions: dict | None = None) -> Path:
    """Write a run folder. ``counts`` maps (task, split) -> (successes, episodes)."""
    suite = suite or suite_dict(tasks=tuple(dict.fromkeys(t for t, _ in counts)),
                                ood=tuple(s for s in dict.fromkeys(s for _, s in counts) if s != "in_domain"))
    run_dir = root / name
    suite_hash = hashlib.sha256(json.dumps(suite, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    policy_block = {"name": policy, "adapter": adapter, "args": {"checkpoint": checkpoint} if checkpoint else {}, "source": None}
    config = {
        "run_id": name, "created_at": created_at, "suite": suite, "suite_hash": suite_hash, "policy": policy_block,
        "replan_steps": None, "videos": "all" if videos else "none", "workers": 2,
        "versions": versions or {"python": "3.11.9", "mujoco": "3.3.2", "numpy": "2.1.0"},
        "git": {"commit": "0123456789abcdef", "dirty": False}, "machine": {"platform": "linux", "cpus": 2, "machine": "x86_64"},
        "argv": ["vla-eval", "run"],
    }
    rng = np.random.default_rng(order_seed)
    items = []
    for (task, split), (k, n) in counts.items():
        success = np.zeros(n, dtype=bool)
        success[rng.permutation(n)[:k]] = True
        items += [(task, split, i, bool(success[i])) for i in range(n)]
    order = rng.permutation(len(items))
    with RunStore(run_dir) as store:
        store._conn.execute("PRAGMA synchronous=OFF")  # fixtures need no crash durability; keeps tests fast
        store.set_meta("run_id", name)
        store.set_meta("protocol", {"suite_hash": suite_hash, "suite": suite, "policy": policy_block, "replan_steps": None})
        store.set_meta("config", config)
        for j in order:
            task, split, i, ok = items[j]
            store.add(EpisodeRecord(
                run_id=name, suite=suite["name"], task=task, split=split, episode_index=i, init_state_id=i, seed=1000 + i,
                instruction=instruction.format(task=task), success=ok, steps=40 if ok else suite["max_steps"],
                termination="success" if ok else "timeout",
                video_path=f"videos/{task}__{split}__{i:03d}.mp4" if videos and i < 2 else None,
            ))
    return run_dir
