"""Coupon benchmark main job: collect, train bandits, evaluate (see jaxretail.evaluation.coupon_benchmark)."""

from jaxretail.evaluation.coupon_benchmark import main

if __name__ == "__main__":
    main()
