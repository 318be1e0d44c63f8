#!/usr/bin/env bash
# SimplerEnv's own engine (ManiSkill2_real2sim @ ef7a4d4 on SAPIEN 2.2.2 PhysX) in its own virtual environment.
#
# Why a separate interpreter: sapien==2.2.2 needs numpy < 2 (with numpy 2 its IK call segfaults) and the
# package's metadata pins gymnasium < 1.0; vla-eval itself runs on numpy 2 and gymnasium >= 1. The harness
# starts this interpreter as a worker-side subprocess (vla_eval/sims/simpler/sapien/server.py), so nothing here
# touches vla-eval's own environment. See docs/simpler.md, "SimplerEnv's own engine (SAPIEN)".
#
# Usage: bash scripts/simpler_sapien_env.sh [VENV_DIR]
#   VENV_DIR defaults to $XDG_DATA_HOME/vla-eval/simpler-sapien (~/.local/share/vla-eval/simpler-sapien),
#   where vla-eval looks for it; elsewhere, export VLA_EVAL_SIMPLER_SAPIEN_PYTHON=VENV_DIR/bin/python.
#   SIMPLER_WHEEL: a local mani_skill2_real2sim wheel or folder to install instead of the upstream repository.
#   PYTHON: the interpreter to build the venv from (default python3; SAPIEN 2.2.2 has wheels for 3.7-3.11).
# System library: sapien.core links libvulkan.so.1 even though nothing is rendered (apt-get install libvulkan1).
set -euo pipefail
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
VENV="${1:-$DATA_HOME/vla-eval/simpler-sapien}"
PY="${PYTHON:-python3}"

if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq --no-install-recommends libvulkan1 || echo "warning: apt-get install libvulkan1 failed"
  else
    echo "warning: libvulkan.so.1 not found; install it (Debian/Ubuntu: apt-get install libvulkan1)" >&2
  fi
fi

# The pinned install steps live in vla_eval/environments.py (ENVIRONMENTS["simpler-sapien"]), shared with
# `vla-eval env create simpler-sapien`; that module needs only the standard library, so any python3 runs it.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VLA_EVAL_ENV_SIMPLER_SAPIEN_BASE_PYTHON="$(command -v "$PY")" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -m vla_eval.environments create simpler-sapien "$VENV"
echo "SimplerEnv's engine installed: $VENV/bin/python"
