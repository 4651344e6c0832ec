"""Evaluate expert, greedy and random assortment policies (see jaxretail.jobs.assortment)."""

from jaxretail.jobs.assortment import main

if __name__ == "__main__":
    main()
