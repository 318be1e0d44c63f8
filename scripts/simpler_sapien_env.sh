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
COMMIT=ef7a4d4fdf4b69f2c2154db5b15b9ac8dfe10682
UPSTREAM="mani_skill2_real2sim @ git+https://github.com/simpler-env/ManiSkill2_real2sim@$COMMIT"
PKG="${SIMPLER_WHEEL:-$UPSTREAM}"

if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq --no-install-recommends libvulkan1 || echo "warning: apt-get install libvulkan1 failed"
  else
    echo "warning: libvulkan.so.1 not found; install it (Debian/Ubuntu: apt-get install libvulkan1)" >&2
  fi
fi

"$PY" -m venv "$VENV"
# The package is installed without its dependencies (its metadata pins gymnasium < 1.0 and old pins of others);
# these are the ones its environments import, with the pins SAPIEN 2.2.2 needs.
"$VENV/bin/python" -m pip install --quiet "sapien==2.2.2" "numpy<2" "setuptools<81" "gymnasium>=0.28.1,<1.0" \
  transforms3d "opencv-python-headless<4.11" trimesh ruckig scipy h5py pyyaml tqdm tabulate imageio GitPython
"$VENV/bin/python" -m pip install --quiet --no-deps "$PKG"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
print({d: m.version(d) for d in ("mani_skill2_real2sim", "sapien", "numpy", "gymnasium")})
import sapien.core  # noqa: F401  (fails here, not at run time, when libvulkan.so.1 is missing)
PY
echo "SimplerEnv's engine installed: $VENV/bin/python"
