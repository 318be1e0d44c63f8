"""Built-in MuJoCo tabletop backend: scene files, MJCF builder, IK controller, predicates, perturbations, env."""
