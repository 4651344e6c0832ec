"""Evaluate expert, greedy and random assortment policies (see jaxretail.evaluation.assortment_report)."""

from jaxretail.evaluation.assortment_report import main

if __name__ == "__main__":
    main()
