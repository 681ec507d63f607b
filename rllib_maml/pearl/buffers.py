"""Per-task transition stores for PEARL (the replay buffer and the encoder
buffer of each training task).

Flat numpy arrays sampled by index. RLlib's `EpisodeReplayBuffer` keeps
episodes and cuts a new episode per sampled transition: 28 ms for 256
transitions here (`benchmarks/pearl_throughput.py`), and PEARL samples
`meta_batch_size` tasks' batches and contexts at every gradient step (16 x 256
plus 16 x 100 transitions), which would spend most of an iteration in the
buffer. These arrays hold the same transitions (observation, the module's
action, reward, next observation, terminated) and sample them uniformly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminateds")


def episode_transitions(episode) -> dict[str, np.ndarray]:
    """An RLlib `SingleAgentEpisode`'s transitions as arrays (`FIELDS`)."""
    obs = np.asarray(episode.get_observations(), dtype=np.float32)
    n = len(episode)
    terminateds = np.zeros(n, dtype=np.float32)
    terminateds[-1] = float(episode.is_terminated)
    return {
        "obs": obs[:-1].reshape(n, -1),
        "actions": np.asarray(episode.get_actions(), dtype=np.float32).reshape(n, -1),
        "rewards": np.asarray(episode.get_rewards(), dtype=np.float32),
        "next_obs": obs[1:].reshape(n, -1),
        "terminateds": terminateds,
    }


def context_rows(transitions: dict[str, np.ndarray]) -> np.ndarray:
    """Context transitions (s, a, r, s') as rows `[n, 2 obs + act + 1]`."""
    return np.concatenate(
        [
            transitions["obs"],
            transitions["actions"],
            transitions["rewards"][:, None],
            transitions["next_obs"],
        ],
        axis=1,
    ).astype(np.float32)


class TaskBuffer:
    """A ring buffer of one task's transitions (`capacity`: the newest kept)."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.arrays: dict[str, np.ndarray] | None = None
        self.size = 0
        self.next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: dict[str, np.ndarray]) -> None:
        n = len(transitions["rewards"])
        if n > self.capacity:
            transitions = {k: v[-self.capacity :] for k, v in transitions.items()}
            n = self.capacity
        self._reserve(min(self.size + n, self.capacity), transitions)
        index = (self.next + np.arange(n)) % self.capacity
        for key, value in transitions.items():
            self.arrays[key][index] = value
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def _reserve(self, size: int, like: dict[str, np.ndarray]) -> None:
        """Room for `size` transitions, grown by doubling up to `capacity` (a
        buffer wraps only once full, so the stored ones are at 0..size-1)."""
        have = 0 if self.arrays is None else len(self.arrays["rewards"])
        if size <= have:
            return
        rows = min(self.capacity, max(size, 2 * have, 1024))
        grown = {
            key: np.zeros((rows, *value.shape[1:]), dtype=np.float32)
            for key, value in like.items()
        }
        if self.arrays is not None:
            for key, value in self.arrays.items():
                grown[key][: self.size] = value[: self.size]
        self.arrays = grown

    def clear(self) -> None:
        self.size = 0
        self.next = 0

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`n` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("Cannot sample from an empty PEARL task buffer.")
        index = rng.integers(0, self.size, size=n)
        return {key: value[index] for key, value in self.arrays.items()}

    def get_state(self) -> dict[str, Any]:
        arrays = None
        if self.arrays is not None:
            # The stored transitions only, oldest first.
            order = (np.arange(self.size) + self.next - self.size) % len(
                self.arrays["rewards"]
            )
            arrays = {key: value[order] for key, value in self.arrays.items()}
        return {"capacity": self.capacity, "arrays": arrays}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__init__(state["capacity"])
        if state["arrays"] is not None:
            self.add(state["arrays"])
