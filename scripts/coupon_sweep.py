"""Static coupon levels and random on the 50 + 20 week protocol (see jaxretail.evaluation.coupon_sweep)."""

from jaxretail.evaluation.coupon_sweep import main

if __name__ == "__main__":
    main()
