"""vla-eval: evaluate Vision-Language-Action policies in simulation with numbers you can trust."""

__version__ = "0.1.0"
