"""Dynamic pricing main job: the comparisons of Liu et al. (2019) on simulated SKUs
(see jaxretail.jobs.pricing)."""

from jaxretail.jobs.pricing import build_parser, main  # noqa: F401

if __name__ == "__main__":
    main()
