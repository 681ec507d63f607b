"""What PEARL's encoder reads from a context: the held-out return of an episode
with z from the posterior of contexts of different makeup, for trained PEARL
checkpoints.

The paper's evaluation infers z from the first episode alone (one prior z, so
one behaviour); training draws each context from the task's encoder buffer,
which holds the iteration's `num_steps_prior` steps: with horizon 200 and 400
prior steps, two episodes with different prior z's. Per held-out task (the
tasks `rllib-maml evaluate` uses), two episodes with prior z's A and B, then
one posterior episode per context:

- `one episode`: all of episode A (the paper's episode-2 context);
- `one episode, <c> of it`: `embedding_batch_size` transitions of A;
- `two episodes, <c> of them`: that many of A and B (training's makeup);
- `two episodes`: all of A and B;
- `two exploring episodes, <c> of them`: the same with A's and B's z and the
  actions sampled, as the encoder buffer's episodes are in training;
- `training's posterior phase`: three exploring posterior episodes, the
  first from that context, each later one from it plus the earlier posterior
  episodes (the runner's growing context in training's posterior steps);
  episodes 1 and 3 are reported.

`--task-set train` runs the same on the checkpoint's training tasks, which
tells a task distribution the encoder did not learn from tasks it memorized.

Episodes run on one local env with the policy's mode, as the evaluation's do;
no Ray is started. The env's actions must lie in [-1, 1] (the module's squashed
range, as HalfCheetah's and Ant's do).

How to run (2 CPU cores: about 10 seconds per checkpoint):
    S=benchmarks/results/learning_pearl_halfcheetah_rand_vel_state
    python benchmarks/pearl_context_makeup.py \
        --checkpoints $S/seed0/checkpoint $S/seed1/checkpoint $S/seed2/checkpoint \
        --output benchmarks/results/pearl_context_makeup.json
    (and with `--task-set train` -> pearl_context_makeup_train_tasks.json,
    `--explore` -> pearl_context_makeup_explore.json)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import rllib_maml  # noqa: E402,F401
from rllib_maml.envs.base import env_from_config  # noqa: E402
from rllib_maml.evaluation import heldout_tasks  # noqa: E402
from rllib_maml.pearl import PEARLConfig  # noqa: E402
from rllib_maml.pearl.buffers import context_rows  # noqa: E402
from rllib_maml.pearl.gaussians import sample_z  # noqa: E402

MODULE_PATH = "learner_group/learner/rl_module/default_policy"
# The tuned example's 600 extra posterior steps: 3 episodes of 200.
PHASE_EPISODES = 3
TRAINING_PHASE = (
    "training's posterior phase, episode 1",
    f"training's posterior phase, episode {PHASE_EPISODES}",
)


def rollout(
    env, module, z: torch.Tensor, seed: int, explore: bool = False
) -> tuple[np.ndarray, float, float | None]:
    """One episode on [obs, z] with the policy's mode (`explore`: actions
    sampled, as in training): (context rows, return, mean forward velocity
    where the env's infos carry `x_velocity`)."""
    dist_cls = module.get_inference_action_dist_cls()
    obs, _ = env.reset(seed=seed)
    columns = {"obs": [], "actions": [], "rewards": [], "next_obs": []}
    velocities, done = [], False
    while not done:
        with torch.no_grad():
            logits = module.policy_inputs(
                torch.as_tensor(obs, dtype=torch.float32)[None], z[None]
            )
            dist = dist_cls.from_logits(logits)
            action = (dist if explore else dist.to_deterministic()).sample()
        action = action[0].numpy()
        next_obs, reward, terminated, truncated, info = env.step(action)
        velocities.append(info.get("x_velocity", np.nan))
        for key, value in zip(columns, (obs, action, reward, next_obs), strict=True):
            columns[key].append(value)
        obs, done = next_obs, terminated or truncated
    transitions = {
        key: np.asarray(value, dtype=np.float32) for key, value in columns.items()
    }
    velocity = float(np.mean(velocities))
    return (
        context_rows(transitions),
        float(transitions["rewards"].sum()),
        None if np.isnan(velocity) else velocity,
    )


def posterior_z(module, context: np.ndarray, gen: torch.Generator) -> torch.Tensor:
    """A z drawn from q(z | context) (`context`: rows `[n, context_size]`)."""
    with torch.no_grad():
        mu, var = module.posterior(torch.as_tensor(context)[None])
        return sample_z(mu, var, generator=gen)[0]


def checkpoint_entry(checkpoint: str, args, env, tasks: list) -> dict:
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(str(Path(checkpoint).resolve() / MODULE_PATH))
    module.eval()
    latent = module.latent_dim
    c = args.context_size
    makeups = ("one episode", f"one episode, {c} of it")
    makeups += (f"two episodes, {c} of them", "two episodes")
    makeups += (f"two exploring episodes, {c} of them",)
    names = ("prior episode", *makeups, *TRAINING_PHASE)
    returns: dict[str, list[float]] = {name: [] for name in names}
    velocities: dict[str, list] = {name: [] for name in names}
    set_task = env.get_wrapper_attr("set_task")
    for k, task in enumerate(tasks):
        set_task(task)
        gen = torch.Generator().manual_seed(args.seed * 10_000 + k)
        torch.manual_seed(args.seed * 10_000 + k)  # the sampled actions
        rng = np.random.default_rng(args.seed * 10_000 + k)
        prior = [torch.randn(latent, generator=gen) for _ in range(2)]
        a, return_a, velocity_a = rollout(
            env, module, prior[0], seed=3 * k, explore=args.explore
        )
        b, _, _ = rollout(env, module, prior[1], seed=3 * k + 1, explore=args.explore)
        both = np.concatenate([a, b])
        exploring = np.concatenate(
            [
                rollout(env, module, z, seed=3 * k + i, explore=True)[0]
                for i, z in enumerate(prior)
            ]
        )
        contexts = (
            a,
            a[rng.choice(len(a), min(c, len(a)), replace=False)],
            both[rng.choice(len(both), min(c, len(both)), replace=False)],
            both,
            exploring[rng.choice(len(exploring), c, replace=False)],
        )
        returns["prior episode"].append(return_a)
        velocities["prior episode"].append(velocity_a)
        for name, context in zip(makeups, contexts, strict=True):
            z = posterior_z(module, context, gen)
            _, ret, velocity = rollout(
                env, module, z, seed=3 * k + 2, explore=args.explore
            )
            returns[name].append(ret)
            velocities[name].append(velocity)
        # Training's posterior phase: exploring episodes, the first with z from
        # the exploring prior episodes' context, each later one from that
        # context grown by the earlier posterior episodes (as the runner's).
        context, phase = contexts[-1], []
        for i in range(PHASE_EPISODES):
            z = posterior_z(module, context, gen)
            rows, ret, velocity = rollout(env, module, z, seed=3 * k + i, explore=True)
            phase.append((ret, velocity))
            context = np.concatenate([context, rows])
        for name, (ret, velocity) in zip(
            TRAINING_PHASE, (phase[0], phase[-1]), strict=True
        ):
            returns[name].append(ret)
            velocities[name].append(velocity)
    first = np.asarray(returns["one episode"])
    summary = {"tasks": tasks}
    for name in names:
        values = np.asarray(returns[name])
        diff = values - first
        summary[name] = {
            "mean": float(values.mean()),
            "sem": _sem(values),
            "minus_one_episode": float(diff.mean()),
            "minus_one_episode_sem": _sem(diff),
            "task_returns": values.tolist(),
            "task_velocities": velocities[name],
        }
        print(
            f"{Path(checkpoint).parent.name}: {name:26s} {values.mean():8.1f} "
            f"± {_sem(values):5.1f}   paired vs one episode "
            f"{diff.mean():+7.1f} ± {_sem(diff):.1f}",
            flush=True,
        )
    return summary


def _sem(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True)
    parser.add_argument("--env", default="rllib_maml/HalfCheetahRandVel-v0")
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--context-size",
        type=int,
        default=100,
        help="transitions drawn for the subsampled contexts (the tuned "
        "examples' embedding_batch_size)",
    )
    parser.add_argument(
        "--task-set",
        choices=("heldout", "train"),
        default="heldout",
        help="heldout: the tasks `rllib-maml evaluate` uses; train: the first "
        "--tasks of each checkpoint's training tasks",
    )
    parser.add_argument(
        "--explore",
        action="store_true",
        help="sample the actions of the prior and posterior episodes (as "
        "training does) instead of the policy's mode (as the evaluation does)",
    )
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = PEARLConfig().environment(args.env, env_config={"horizon": args.horizon})
    heldout = heldout_tasks(_Holder(config), args.tasks, args.seed)
    env = env_from_config(config)
    results = {}
    for checkpoint in args.checkpoints:
        tasks = heldout
        if args.task_set == "train":
            tasks = train_tasks(checkpoint)[: args.tasks]
        results[checkpoint] = checkpoint_entry(checkpoint, args, env, tasks)
    write_results(args.output, "pearl_context_makeup", args, results=results)


def train_tasks(checkpoint: str) -> list:
    """The training tasks a PEARL checkpoint stores (`PEARL_STATE`)."""
    import pickle

    from rllib_maml.pearl.pearl import PEARL_STATE

    with open(Path(checkpoint) / "algorithm_state.pkl", "rb") as f:
        return pickle.load(f)[PEARL_STATE]["train_tasks"]


class _Holder:
    """What `heldout_tasks` reads of an algorithm: its `config`."""

    def __init__(self, config):
        self.config = config


if __name__ == "__main__":
    main()
