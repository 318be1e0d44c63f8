"""The run pipeline: episode plan, scheduling loop, workers, rollout and the runner that ties them."""
