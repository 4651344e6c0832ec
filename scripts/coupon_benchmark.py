"""Coupon benchmark main job: collect, train bandits, evaluate (see jaxretail.jobs.coupon_benchmark)."""

from jaxretail.utils.devices import use_every_core

use_every_core()  # simulations run one per core (before JAX starts)

from jaxretail.jobs.coupon_benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
