"""Seconds per meta-iteration at the MAML paper's Navigation2D setting.

20 tasks x 20 episodes x horizon 100, one inner step: about 80,000 env steps
per iteration (before and after adaptation), 2 env runners. Times, in one run,
each sampling variant (and each outer optimizer), end to end (sampling,
adaptation, meta-update, sync) with the per-phase breakdown:

- `batched_vector`: 10 tasks per runner in one pass (200 envs per runner),
  Navigation2D stepped as arrays (`gym_env_vectorize_mode="vector_entry_point"`);
- `batched_sync`: the same passes over a gymnasium `SyncVectorEnv`;
- `per_task`: each task with RLlib's `EnvRunner.sample()`, 20 envs per runner.

How to run:
    python benchmarks/paper_iteration.py    # writes results/paper_iteration.json
    # TRPO with the meta-objective in a loop over tasks (batched_meta_loss=False):
    python benchmarks/paper_iteration.py --outer-optimizers trpo --meta-losses loop \
        --variants batched_vector batched_sync \
        --output benchmarks/results/paper_iteration_trpo_loop.json
    # the learner phases on 1 learner (in the driver) and on 2 learner actors:
    python benchmarks/paper_iteration.py --variants batched_vector --learners 0 2 \
        --cpus-per-learner 1 --output benchmarks/results/paper_iteration_learners.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import ray
from _common import RESULTS, write_results
from scaling import add_setting_arguments, run

VARIANTS = {
    "batched_vector": {
        "envs_per_runner": 200,
        "vectorize_mode": "vector_entry_point",
        "per_task_sampling": False,
    },
    "batched_sync": {
        "envs_per_runner": 200,
        "vectorize_mode": "sync",
        "per_task_sampling": False,
    },
    "per_task": {
        "envs_per_runner": 20,
        "vectorize_mode": "sync",
        "per_task_sampling": True,
    },
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_setting_arguments(parser)
    parser.set_defaults(
        runners=[2], meta_batch_size=20, episodes_per_task=20, iterations=3
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--outer-optimizers", nargs="+", default=["ppo", "trpo"])
    parser.add_argument(
        "--meta-losses", nargs="+", default=["batched"], choices=["batched", "loop"]
    )
    parser.add_argument("--output", default=str(RESULTS / "paper_iteration.json"))
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for learners, optimizer, meta_loss, name in itertools.product(
        args.learners, args.outer_optimizers, args.meta_losses, args.variants
    ):
        settings = argparse.Namespace(
            **{
                **vars(args),
                **VARIANTS[name],
                "outer_optimizer": optimizer,
                "meta_loss": meta_loss,
            }
        )
        row = run(settings, args.runners[0], learners)
        rows.append(
            {"variant": name, "outer_optimizer": optimizer, "meta_loss": meta_loss}
            | row
        )
        print(json.dumps(rows[-1]), flush=True)
    write_results(
        args.output,
        "MAML meta-iteration at the MAML paper's Navigation2D setting",
        {**vars(args), "variant_settings": VARIANTS},
        results=rows,
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
