"""SimplerEnv's own robots, objects, cameras and real photos in MuJoCo (visual matching on a CPU).

``urdf``: URDF -> MJCF; ``meshes``: object models for MuJoCo; ``widowx``: the WidowX facts with
sources; ``bridge``: the Bridge visual-matching env; ``overlay``: the real-photo composite;
``pictures``: first frames beside SimplerEnv's photos, and speed. The asset pack comes from
``vla-eval assets fetch simpler`` (:mod:`vla_eval.assets`). See docs/simpler.md.
"""
