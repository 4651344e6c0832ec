"""Evaluate the offer DQN (gamma 0.95 and 0), a gradient-boosting baseline and fixed policies
(see jaxretail.jobs.offers)."""

from jaxretail.jobs.offers import build_parser, main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
