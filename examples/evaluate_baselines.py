"""Meta-train MAML briefly, then adapt to held-out tasks against the baselines.

How to run:
    python examples/evaluate_baselines.py                   # about 4 minutes on 2 cores
    python examples/evaluate_baselines.py --iterations 40 --baseline-iters 50

It trains MAML, then evaluates on 20 held-out tasks with up to 3 inner steps:
MAML's meta-policy, a random init, a multi-task PPO policy (pretrained) and
a PPO policy that sees the task (oracle). It writes evaluation.json,
evaluation.md and adaptation.png to --output.

Results to expect (Navigation2D-v0, defaults, seed 0): see the README's
"Evaluation" section for the table this script printed on a 2-core machine.
"""

import argparse
import sys

import ray

import rllib_maml  # noqa: F401  (registers the meta envs)
from rllib_maml import MAMLConfig
from rllib_maml.evaluation import evaluate_with_baselines, markdown_table, write_report
from rllib_maml.progress import HEADER, progress_line
from rllib_maml.quiet import quiet_ray


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="rllib_maml/Navigation2D-v0")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--baseline-iters", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--output", default="maml_evaluation")
    args = parser.parse_args(argv)

    ray.init(include_dashboard=False, log_to_driver=False, **quiet_ray())
    config = (
        MAMLConfig()
        .environment(args.env)
        .env_runners(num_env_runners=2)
        .training(meta_batch_size=10, episodes_per_task=10)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    print(HEADER)
    for _ in range(args.iterations):
        print(progress_line(algo.train()), flush=True)
    report = evaluate_with_baselines(
        algo,
        num_tasks=args.tasks,
        num_steps=args.steps,
        baseline_iterations=args.baseline_iters,
        log=print,
    )
    algo.stop()
    print(markdown_table(report))
    print("Wrote", ", ".join(write_report(report, args.output).values()))
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
