"""Long-run finiteness check of the coupon environment (every named configuration, clean and paper mode).

Runs ``--weeks`` weeks of ``--customers`` customers on the full catalogue under uniformly random coupons
and checks that every state field, every weekly reward and the guarded non-finite flag stay clean.
Prints one line per configuration and mode; exits 1 if any check fails.

    python scripts/coupon_finite_check.py --customers 2000 --weeks 70
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.rollout import scan_steps
from jaxretail.core.validation import cli_parser, int_at_least, seed_flag
from jaxretail.envs.coupon import CONFIGS, get_config, sample_scenario
from jaxretail.envs.coupon.env import CouponEnv, make_params
from jaxretail.envs.coupon.modes import MODES
from jaxretail.envs.coupon.policies import random_coupon_policy
from jaxretail.envs.coupon.protocol import auto_block_size


def check(config: str, mode: str, customers: int, weeks: int, seed: int) -> dict:
    cfg = get_config(config)
    scenario = sample_scenario(jax.random.key(seed), cfg, customers, mode=mode)
    params = make_params(scenario, cfg, block_size=auto_block_size(customers), mode=mode)
    env = CouponEnv(params)

    @jax.jit
    def run(key):
        obs, state = env.reset(key, params)
        rec = lambda tr: {"reward": tr.reward, "nonfinite": tr.info["nonfinite"], "obs": tr.obs}  # noqa: E731
        return scan_steps(env, random_coupon_policy, key, params, obs, state, weeks, record=rec)

    start = time.perf_counter()
    obs, state, rec = run(jax.random.key(seed + 1))
    leaves = jax.tree.leaves(state) + [obs, rec["reward"], rec["obs"]]
    finite = all(
        bool(np.isfinite(np.asarray(x, np.float64)).all())
        for x in leaves
        if jnp.issubdtype(x.dtype, jnp.floating)
    )
    return {
        "config": config,
        "mode": mode,
        "finite": finite,
        "flagged_customer_weeks": int(np.asarray(rec["nonfinite"]).sum()),
        "visit_probability_min": float(np.min(state.visit_probability)),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None) -> int:
    ap = cli_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int_at_least(1), default=2000)
    ap.add_argument("--weeks", type=int_at_least(1), default=70)
    ap.add_argument("--seed", type=seed_flag, default=20)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configuration names")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.configs.split(",")) - set(CONFIGS))
    if unknown:
        ap.error(f"--configs: unknown configuration(s) {unknown}; allowed: {sorted(CONFIGS)}")
    ok = True
    for config in args.configs.split(","):
        for mode in MODES:
            r = check(config, mode, args.customers, args.weeks, args.seed)
            ok &= r["finite"] and r["flagged_customer_weeks"] == 0
            print(
                f"{config:10s} {mode:5s} finite={r['finite']} flagged={r['flagged_customer_weeks']} "
                f"min p_visit={r['visit_probability_min']:.3f} ({r['seconds']:.0f} s)",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
