"""Errors a user can act on: each names the file, field or value at fault."""

from __future__ import annotations

import difflib


class VlaEvalError(Exception):
    """Base of every user-facing error; the CLI prints it without a traceback and exits 2."""


class ConfigError(VlaEvalError):
    """A suite, scene or policy file (or a CLI value) is invalid."""


class RetryEpisode(VlaEvalError):
    """The episode cannot go on for a reason outside the policy and the env (its policy server
    died and lost the episode's state).  Not recorded: the worker gives its batch back to the
    driver, which reruns those episodes on a fresh worker without charging the attempt."""


class UnknownNameError(VlaEvalError, KeyError):
    """A registry lookup failed; the message carries "did you mean" suggestions."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:
        return self.args[0]
