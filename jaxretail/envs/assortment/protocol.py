"""Protocol of Hoppe et al. (arXiv 2505.19053) for learned assortment policies, agent-agnostic parts:
the seed splits, the expert's episodes (SIL's training data) and the summary rows of a learned method.

Every method trains all initialisation seeds at once, selects its model on validation seeds 1001-1030
(and train seeds 1-30) at every evaluation point, and the kept actors are evaluated on train seeds 1-100
and test seeds 2001-2100. The methods themselves (SIL, SRL, the paper's PPO) are wired to this
environment by :mod:`jaxretail.jobs.assortment_learning`; this module never imports an agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.rollout import rollout
from jaxretail.core.stats import mean_se

MODES = ("paper", "clean")
PAPER_INIT_SEEDS = (14, 16, 18, 19, 28, 34, 41, 57, 72, 95)


def expert_episodes(
    env, params, expert: Callable, seeds: Sequence[int], batch_size: int | None = 100
) -> dict:
    """The expert's observations ``[E, T, F, N]`` and assortments ``[E, T, N]`` on episodes ``key(seed)``."""
    keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds), jnp.uint32))

    @jax.jit
    def run(keys):
        _, _, rec = rollout(
            env,
            expert,
            jax.random.key(0),
            params,
            keys,
            params.horizon,
            record=lambda tr: (tr.obs, tr.action),
            policy_batch_size=batch_size,
        )
        return jnp.swapaxes(rec[0], 0, 1), jnp.swapaxes(rec[1], 0, 1).astype(rec[0].dtype)

    obs, action = run(keys)
    return {"obs": obs, "action": action}


def summary_rows(name: str, revenue: dict[str, np.ndarray], split_seeds: dict) -> list[dict]:
    """Mean revenue over init seeds and episodes with two standard errors: over episodes (of the
    per-episode mean over init seeds) and over init seeds (of the per-seed mean over episodes).

    ``revenue``: split -> episode revenue ``[S_init, E]``; ``split_seeds``: split -> its ``E`` seeds."""
    rows = []
    for split, r in revenue.items():
        per_episode = mean_se(r.mean(axis=0))
        per_init = mean_se(r.mean(axis=1))
        seeds = split_seeds[split]
        rows.append(
            {
                "split": split,
                "seeds": f"{seeds[0]}-{seeds[-1]}",
                "episodes": per_episode.n,
                "policy": name,
                "mean_revenue": round(per_episode.mean, 4),
                "se_revenue": round(per_episode.se, 4),
                "init_seeds": per_init.n,
                "se_init_seeds": round(per_init.se, 4),
            }
        )
    return rows
