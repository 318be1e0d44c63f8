#!/usr/bin/env bash
# Mutation testing of vla-eval's core modules with mutmut (not run in CI: it is slow).
#
#   tools/mutation.sh                 # every module below, one at a time
#   tools/mutation.sh stats tables    # only these modules
#   MUTMUT_MAX_CHILDREN=2 tools/mutation.sh actions
#   MUTATION_SAMPLE=120 tools/mutation.sh check   # a seeded random sample of 120 mutants
#   MUTATION_RERUN=old-results tools/mutation.sh gate   # only last run's survivors (old-results/gate.results)
#
# MUTATION_RERUN: after adding tests, run again only the mutants that survived (or had no
# test) in an earlier run's results folder; its killed mutants stay killed (tests were only
# added), so the score is over the same mutants as before at a fraction of the time.
#
# Each module is mutated in its own scratch copy of the working tree (so runs never
# touch the checkout), driven only by that module's fast tests, at low CPU priority.
# Results: mutation-results/<module>.txt (summary line + every surviving mutant's diff).
# Scores and the survivors judged equivalent are recorded in docs/testing.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python}"
MUTMUT="${MUTMUT:-mutmut}"
OUT="${MUTATION_OUT:-$ROOT/mutation-results}"
CHILDREN="${MUTMUT_MAX_CHILDREN:-1}"
SAMPLE="${MUTATION_SAMPLE:-0}"   # > 0: run only this many mutants per module, drawn with a fixed seed
RERUN="${MUTATION_RERUN:-}"      # a results folder: rerun only its survivors
[ -z "$RERUN" ] || RERUN="$(cd "$RERUN" && pwd)"
mkdir -p "$OUT"

# module name | source file | fast tests that drive it (space-separated; override one
# module's list with MUTATION_TESTS_<name>="tests/a.py tests/b.py"; a pytest node id file.py::test_x
# selects one test, a --deselect=file.py::test_x drops one)
REPORT_VIEW_TESTS="tests/results/test_results_report.py tests/results/test_results_report_families.py"
REPORT_VIEW_TESTS+=" tests/results/test_misses.py tests/results/test_report_view.py"
# the server's cases of the hostile-input file only (the rest mutate nothing here and cost minutes)
SERVER_TESTS="tests/remote/test_batching_server.py tests/remote/test_server_mutants.py tests/policies/test_remote.py"
# a MuJoCo EGL render hangs in mutmut's forked children (the fork server holds a GL context); that test
# covers the rollout's image conversion, not the server
SERVER_TESTS+=" --deselect=tests/policies/test_remote.py::test_remote_rollout_forwards_converted_images_and_camera_params"
for t in odd_image_is_answered_alone_and_good_clients_keep_their_connection \
  observation_outside_the_contract_is_refused_alone stateful_policy_is_never_reset_by_another_session \
  inflight_frame_memory_is_bounded_across_clients idle_and_surplus_connections_are_closed \
  refused_request_does_not_close_the_client; do
  SERVER_TESTS+=" tests/test_hostile_29.py::test_$t"
done
MODULES=(
  "actions|vla_eval/actions/convert.py|tests/actions/test_actions.py"
  "results_stats|vla_eval/results/stats.py|tests/results/test_results_stats.py"
  "check|vla_eval/results/check.py|tests/results/test_results_check.py"
  "compare|vla_eval/results/compare.py|tests/results/test_results_compare.py"
  "tables|vla_eval/tables.py|tests/test_tables.py"
  "plan|vla_eval/execution/plan.py|tests/execution/test_plan.py"
  "store|vla_eval/store.py|tests/test_store.py tests/test_store_reader.py tests/results/test_results_load.py"
  "obs_format|vla_eval/remote/obs_format.py|tests/remote/test_obs_format.py"
  "protocol|vla_eval/remote/protocol.py|tests/remote/test_protocol.py"
  "rollout|vla_eval/execution/rollout.py|tests/execution/test_rollout.py"
  "scheduler|vla_eval/execution/scheduler.py|tests/execution/test_scheduler.py tests/execution/test_scheduler_events.py"
  "gate|vla_eval/results/gate.py|tests/results/test_results_gate.py tests/results/test_gate_text.py"
  "report_view|vla_eval/results/report_view.py|$REPORT_VIEW_TESTS"
  "server|vla_eval/remote/server.py|$SERVER_TESTS"
)

want=("$@")
for entry in "${MODULES[@]}"; do
  IFS='|' read -r name src tests <<<"$entry"
  override="MUTATION_TESTS_${name}"
  tests="${!override:-$tests}"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " ${name} " ]]; then continue; fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/vla-eval-mutation-$name.XXXX")"
  # tracked + untracked-not-ignored files of the working tree, as they are now
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$work/" 2>/dev/null || true)
  else
    cp -a "$ROOT/." "$work/"
  fi
  sel=""
  for t in $tests; do
    case "$t" in -*) ;; *) [ -e "$work/${t%%::*}" ] || continue ;; esac  # an option (--deselect=...) passes as is
    sel="$sel
    $t"
  done
  if [ -z "$sel" ]; then echo "== $name: none of its tests ($tests) exist; skipped"; rm -rf "$work"; continue; fi
  # mutmut reads pyproject's [tool.mutmut] first; the scratch copy's config lives in setup.cfg
  "$PY" - "$work/pyproject.toml" <<'PYEOF'
import re, sys
p = sys.argv[1]
text = open(p).read()
open(p, "w").write(re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", text))
PYEOF
  cat > "$work/setup.cfg" <<CFG
[mutmut]
source_paths = vla_eval
also_copy =
    suites
    policies
    envs
only_mutate = $src
pytest_add_cli_args_test_selection =$sel
pytest_add_cli_args =
    -p
    no:cacheprovider
    -m
    not slow
CFG
  echo "== $name: mutating $src with $tests ($work)"
  (
    cd "$work"
    export MUJOCO_GL="${MUJOCO_GL:-egl}" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 LP_NUM_THREADS=1
    unset PYTHONPATH
    if [ -n "$RERUN" ]; then
      [ -f "$RERUN/$name.results" ] || { echo "== $name: no $RERUN/$name.results to rerun"; exit 0; }
      grep -E ': (survived|no tests)$' "$RERUN/$name.results" \
        | sed -E 's/^ *//; s/: (survived|no tests)$//' >sample.txt || true
      nice -n 15 "$MUTMUT" run --max-children "$CHILDREN" "no_such_mutant_*" >"$OUT/$name.log" 2>&1 || true
      echo "rerunning the $(wc -l <sample.txt) survivors of $RERUN/$name.results" >>"$OUT/$name.log"
      if [ -s sample.txt ]; then
        nice -n 15 "$MUTMUT" run --max-children "$CHILDREN" $(cat sample.txt) >>"$OUT/$name.log" 2>&1 || true
      fi
      {
        grep -v -E ': (survived|no tests)$' "$RERUN/$name.results" || true
        "$MUTMUT" results --all true 2>/dev/null \
          | awk 'NR==FNR {want[$1]; next} {n=$1; sub(/:$/, "", n)} n in want' sample.txt - || true
      } >"$OUT/$name.results.new"
      mv "$OUT/$name.results.new" "$OUT/$name.results"
      sampled=" (the $(wc -l <sample.txt) survivors of $RERUN rerun)"
    elif [ "${SAMPLE}" -gt 0 ]; then
      # generate every mutant and collect test coverage without running any, then run a seeded sample
      nice -n 15 "$MUTMUT" run --max-children "$CHILDREN" "no_such_mutant_*" >"$OUT/$name.log" 2>&1 || true
      "$MUTMUT" results --all true 2>/dev/null | sed -n 's/^ *\([^ :]*\): .*/\1/p' >all-mutants.txt
      "$PY" -c "import random,sys; n=[l.strip() for l in open('all-mutants.txt') if l.strip()]; random.Random(17).shuffle(n); print('\n'.join(sorted(n[:int(sys.argv[1])])))" "$SAMPLE" >sample.txt
      echo "sampled $(wc -l <sample.txt) of $(wc -l <all-mutants.txt) mutants (seed 17)" >>"$OUT/$name.log"
      nice -n 15 "$MUTMUT" run --max-children "$CHILDREN" $(cat sample.txt) >>"$OUT/$name.log" 2>&1 || true
      "$MUTMUT" results --all true 2>/dev/null | awk 'NR==FNR {want[$1]; next} {n=$1; sub(/:$/, "", n)} n in want' sample.txt - >"$OUT/$name.results" || true
      sampled=" (sample of $(wc -l <sample.txt) from $(wc -l <all-mutants.txt) mutants, seed 17)"
    else
      nice -n 15 "$MUTMUT" run --max-children "$CHILDREN" >"$OUT/$name.log" 2>&1 || true
      "$MUTMUT" results --all true >"$OUT/$name.results" 2>&1 || true
      sampled=""
    fi
    # a timeout counts as killed (the mutant hung the tests); a mutant no test runs counts as survived
    killed=$(grep -c -E ': (killed|timeout)$' "$OUT/$name.results" || true)
    survived=$(grep -c -E ': (survived|no tests)$' "$OUT/$name.results" || true)
    other=$(grep -v -c -E ': (killed|timeout|survived|no tests)$' "$OUT/$name.results" || true)
    total=$((killed + survived))
    score=$([ "$total" -gt 0 ] && echo "scale=1; 100 * $killed / $total" | bc || echo "n/a")
    {
      echo "$name ($src): $killed killed / $total mutants = $score%$sampled (other states: $other)"
      # `mutmut show` must not read the loop's stdin: it swallowed the rest of the survivor list
      grep -E ': (survived|no tests)$' "$OUT/$name.results" | sed -E 's/: (survived|no tests)$//' | while read -r m; do
        echo; echo "--- survivor $m"; "$MUTMUT" show "$m" </dev/null 2>/dev/null | sed -n '1,40p'
      done
    } >"$OUT/$name.txt"
    head -1 "$OUT/$name.txt"
  )
  [ -n "${KEEP_MUTATION_WORK:-}" ] || rm -rf "$work"
done
