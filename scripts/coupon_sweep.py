"""Static coupon levels and random on the 50 + 20 week protocol (see jaxretail.jobs.coupon_sweep)."""

from jaxretail.jobs.coupon_sweep import main

if __name__ == "__main__":
    main()
