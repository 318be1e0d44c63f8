"""Results you can trust: query every run, compare runs, gate CI, publish a leaderboard.

``load(root, **filters)`` gives every episode under a results root as a pandas DataFrame;
``list_runs(root)`` summarises the run folders. The statistics live in
:mod:`vla_eval.results.stats`, the comparison in :mod:`.compare`, the CI gate in
:mod:`.check`, sequential testing in :mod:`.sequential`, the gated run's group-sequential
design in :mod:`.gate` (boundaries in :mod:`.groupseq`, runner glue in :mod:`.gate_run`), sim-vs-real agreement in
:mod:`.correlate` and the static leaderboard in :mod:`.report`.
"""

from vla_eval.results.runs import RunInfo, find_run_dirs, list_runs, load, protocol_summary
from vla_eval.results.sequential import SequentialTest

__all__ = ["load", "list_runs", "find_run_dirs", "RunInfo", "protocol_summary", "SequentialTest"]
