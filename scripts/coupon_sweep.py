"""Static coupon levels and random on the 50 + 20 week protocol (see jaxretail.jobs.coupon_sweep)."""

from jaxretail.utils.devices import use_every_core

use_every_core()  # simulations run one per core (before JAX starts)

from jaxretail.jobs.coupon_sweep import main  # noqa: E402

if __name__ == "__main__":
    main()
