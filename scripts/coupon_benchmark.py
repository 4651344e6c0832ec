"""Coupon benchmark main job: collect, train bandits, evaluate (see jaxretail.jobs.coupon_benchmark)."""

from jaxretail.jobs.coupon_benchmark import main

if __name__ == "__main__":
    main()
