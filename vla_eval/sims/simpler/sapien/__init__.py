"""SimplerEnv's own engine (ManiSkill2_real2sim @ ef7a4d4 on SAPIEN 2.2.2 PhysX) inside vla-eval, physics-only on a CPU.

``engine``: finding SimplerEnv's interpreter and the server process; ``server``: the script that runs in it;
``wire``: the framing both sides speak; ``tasks``: which SimplerEnv env id and settings stand for each task;
``env``: the gymnasium env; ``backend``: the ``simpler_sapien`` backend. Install: ``scripts/simpler_sapien_env.sh``
(docs/simpler.md, "SimplerEnv's own engine (SAPIEN)").
"""
