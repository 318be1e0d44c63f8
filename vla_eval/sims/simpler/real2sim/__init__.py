"""SimplerEnv's own robots, objects, cameras and real photos in MuJoCo (visual matching on a CPU).

``urdf``: URDF -> MJCF; ``meshes``: object models for MuJoCo; ``widowx_robot``: the WidowX facts with
sources; ``widowx_env``: the Bridge visual-matching env; ``google_robot`` / ``google_env``: the Google
robot and its env; ``overlay``: the real-photo composite;
``pictures``: first frames beside SimplerEnv's photos, and speed. The asset pack comes from
``vla-eval assets fetch simpler`` (:mod:`vla_eval.assets`). See docs/simpler.md.
"""
