"""Train the reference policy by behaviour cloning on HDF5 demos from ``vla-eval record-demos``.

Outside the package on purpose: the package only needs to *load* the checkpoints; this
script is how anyone rebuilds them. Everything that decides the weights is seeded (torch,
the batch sampler, the augmentation) and torch runs deterministic algorithms on a fixed
thread count, so the same demos + seed + command give the same checkpoints on this CPU.

    python training/train_reference.py --demos demos/ --out vla_eval/policies/reference_ckpt

Writes ``early.safetensors`` / ``final.safetensors`` (weights only, no pickle) and a JSON
beside each (network config, normalisation stats, vocabulary, seed, command, data hashes,
losses, wall time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=Path, nargs="+", required=True, help="folder(s) of <task>_demo.hdf5 files")
    p.add_argument("--out", type=Path, required=True, help="output folder for the checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--early-step", type=int, default=500, help="also save the weights after this many steps as 'early'")
    p.add_argument("--save-every", type=int, default=0, help="also save step_<N> checkpoints every N steps (0 = off)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--chunk", type=int, default=4)
    p.add_argument("--channels", default="16,32,32,32")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--shift", type=int, default=4, help="random-shift augmentation in pixels (0 = off)")
    p.add_argument("--max-demos", type=int, default=None, help="use at most this many demos per task")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 is ~15x faster than 2 when other processes share the two cores (OpenMP spin-waits)",
    )
    p.add_argument("--log-every", type=int, default=200)
    return p.parse_args(argv)


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_demos(folders: list[Path], image_size: int, cameras: tuple[str, ...], max_demos: int | None):
    """Every step of every demo, as arrays; chunk targets are padded with each demo's last action."""
    import h5py

    from vla_eval.demos import CAMERA_KEYS
    from vla_eval.policies.reference_model import downsample, proprio_vector

    files = [f for folder in folders for f in sorted(Path(folder).glob("*_demo.hdf5"))]
    if not files:
        raise SystemExit(
            f"error: no *_demo.hdf5 files in {[str(f) for f in folders]} (record them with vla-eval record-demos)"
        )
    images, proprio, actions, instr, demo_id, step_id = [], [], [], [], [], []
    data_info, n_demo = {}, 0
    for path in files:
        with h5py.File(path, "r") as f:
            grp = f["data"]
            names = sorted(grp.keys(), key=lambda k: int(k.split("_")[1]))[:max_demos]
            for name in names:
                d = grp[name]
                cams = [downsample(d[f"obs/{CAMERA_KEYS[c]}"][()], image_size) for c in cameras]
                images.append(np.stack(cams, axis=1))
                proprio.append(proprio_vector(d["obs/ee_pos"][()], d["obs/ee_ori"][()], d["obs/gripper_states"][()]))
                actions.append(d["actions"][()].astype(np.float32))
                n = len(actions[-1])
                instr += [str(d.attrs["instruction"])] * n
                demo_id += [n_demo] * n
                step_id += list(range(n))
                n_demo += 1
            data_info[f"{path.parent.name}/{path.name}"] = {
                "sha256_16": file_sha(path),
                "demos_used": len(names),
                "problem_info": json.loads(grp.attrs["problem_info"]),
            }
    return dict(
        images=np.concatenate(images),
        proprio=np.concatenate(proprio),
        actions=actions,
        instructions=instr,
        demo_id=np.asarray(demo_id),
        step_id=np.asarray(step_id),
        files=data_info,
        n_demos=n_demo,
    )


def chunk_targets(actions: list[np.ndarray], chunk: int) -> np.ndarray:
    out = []
    for a in actions:
        padded = np.concatenate([a, np.repeat(a[-1:], chunk - 1, axis=0)])
        out.append(np.stack([padded[t : t + chunk] for t in range(len(a))]))
    return np.concatenate(out).astype(np.float32)


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except Exception:
        return None


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    from safetensors.torch import save_file

    from vla_eval.policies.reference_model import (
        NetConfig,
        Normalizer,
        ReferenceNet,
        build_vocab,
        image_tensor,
        instruction_vector,
        random_shift,
    )

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # NaN-filling every new tensor costs ~15% here
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)

    t_load = time.perf_counter()
    cameras = ("agentview", "wrist")
    data = load_demos(args.demos, args.image_size, cameras, args.max_demos)
    targets = chunk_targets(data["actions"], args.chunk)
    flat_actions = np.concatenate(data["actions"])
    vocab = build_vocab(data["instructions"])
    norm = Normalizer(
        proprio_mean=data["proprio"].mean(0).tolist(),
        proprio_std=np.maximum(data["proprio"].std(0), 1e-3).tolist(),
        action_mean=flat_actions.mean(0).tolist(),
        action_std=np.maximum(flat_actions.std(0), 1e-2).tolist(),
    )
    proprio = torch.from_numpy(norm.proprio(data["proprio"]))
    task = torch.from_numpy(instruction_vector(data["instructions"], vocab))
    target = torch.from_numpy(norm.action(targets))
    images = data["images"]
    n = len(images)
    load_s = time.perf_counter() - t_load
    print(f"loaded {data['n_demos']} demos, {n} steps, vocab {len(vocab)} words in {load_s:.1f}s", flush=True)

    cfg = NetConfig(
        cameras=cameras,
        image_size=args.image_size,
        channels=tuple(int(c) for c in args.channels.split(",")),
        hidden=args.hidden,
        proprio_dim=proprio.shape[1],
        vocab=vocab,
        chunk=args.chunk,
    )
    net = ReferenceNet(cfg)
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    command = (
        " ".join(["python", *map(shlex.quote, [str(Path(sys.argv[0])), *sys.argv[1:]])]) if argv is None else repr(argv)
    )
    print(f"network: {n_params} parameters; {args.steps} steps of batch {args.batch}", flush=True)

    losses: list[tuple[int, float]] = []
    commit = git_commit()  # of the code that runs, taken before anyone can commit during training
    t0 = time.perf_counter()
    running = 0.0

    def save(name: str, step: int) -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        weights = args.out / f"{name}.safetensors"
        save_file(state, str(weights), metadata={"format": "pt", "policy": "vla_eval.reference", "name": name})
        meta = {
            "name": name,
            "step": step,
            "net": cfg.to_dict(),
            "normalizer": norm.__dict__,
            "weights_sha256": file_sha(weights),
            "parameters": n_params,
            "training": {
                "seed": args.seed,
                "command": command,
                "args": {k: _jsonable(v) for k, v in vars(args).items()},
                "steps_total": args.steps,
                "data": data["files"],
                "samples": n,
                "demos": data["n_demos"],
                "wall_time_s": round(time.perf_counter() - t0, 1),
                "data_load_s": round(load_s, 1),
                "losses": losses,
                "git_commit": commit,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
                "load_average_at_save": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            },
        }
        (args.out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"saved {weights} (step {step}, {weights.stat().st_size / 1e6:.2f} MB)", flush=True)

    net.train()
    for step in range(1, args.steps + 1):
        idx = np.sort(rng.integers(0, n, size=args.batch))
        x = image_tensor(images[idx])
        if args.shift:
            x = random_shift(x.flatten(0, 1), args.shift, gen).reshape(x.shape)
        pred = net(x, proprio[idx], task[idx])
        loss = torch.nn.functional.mse_loss(pred, target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if step % args.log_every == 0:
            losses.append((step, round(running / args.log_every, 5)))
            rate = step / (time.perf_counter() - t0)
            print(
                f"step {step}/{args.steps} loss {running / args.log_every:.4f} "
                f"({rate:.1f} steps/s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            running = 0.0
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            save(f"step_{step}", step)
        if step == args.early_step:
            net.eval()
            save("early", step)
            net.train()
    net.eval()
    save("final", args.steps)
    print(f"training wall time {time.perf_counter() - t0:.1f}s (+{load_s:.1f}s loading)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
