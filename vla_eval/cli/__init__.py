"""``vla-eval`` commands, one module per command group; :func:`main` is the entry point."""

from vla_eval.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
