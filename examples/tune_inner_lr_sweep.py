"""Sweep MAML's inner learning rate with Ray Tune.

How to run:
    python examples/tune_inner_lr_sweep.py                  # local Ray, 2 cores
    RAY_ADDRESS=auto python examples/tune_inner_lr_sweep.py --iterations 40

Each trial asks for 1 CPU plus 0.5 per env runner, so on 2 cores the trials run
one after the other. Results (and checkpoints) go to --storage-path.

Results to expect (Navigation2D-v0, 10 iterations, 2 cores, about 2 minutes per
trial): every inner lr adapts (positive delta); 0.1 (the MAML paper's) gives the
best post-adaptation return of the three.
"""

import argparse
import os
import sys

import ray
from ray import tune

import rllib_maml  # noqa: F401  (registers the meta envs)
from rllib_maml import MAML, MAMLConfig
from rllib_maml.progress import post_adaptation_return
from rllib_maml.quiet import quiet_ray


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="rllib_maml/Navigation2D-v0")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--inner-lrs", type=float, nargs="+", default=[0.01, 0.1, 0.5])
    parser.add_argument("--storage-path", default=os.path.abspath("maml_sweep"))
    args = parser.parse_args(argv)

    ray.init(include_dashboard=False, log_to_driver=False, **quiet_ray())
    config = (
        MAMLConfig()
        .environment(args.env)
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .training(
            meta_batch_size=10,
            episodes_per_task=10,
            inner_lr=tune.grid_search(args.inner_lrs),
        )
        .debugging(seed=0)
    )
    results = tune.Tuner(
        MAML,
        param_space=config,
        run_config=tune.RunConfig(
            name="inner_lr_sweep",
            storage_path=args.storage_path,
            stop={"training_iteration": args.iterations},
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        ),
    ).fit()
    print(f"{'inner_lr':>9} {'pre-adapt':>11} {'post-adapt':>11} {'delta':>8}")
    for result in sorted(results, key=lambda r: r.metrics["config"]["inner_lr"]):
        m = result.metrics
        print(
            f"{m['config']['inner_lr']:>9g} "
            f"{m['env_runners']['episode_return_mean']:>11.2f} "
            f"{post_adaptation_return(m):>11.2f} {m['adaptation_delta']:>+8.2f}"
        )
    print(f"Plot: rllib-maml plot {os.path.join(args.storage_path, 'inner_lr_sweep')}")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
