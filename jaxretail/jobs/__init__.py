"""Main jobs, the top floor: each wires the data collection, the agents, a system's environment and its
protocol, then writes tables and plots. One module per main job (``scripts/*.py`` are thin wrappers):

* :mod:`~jaxretail.jobs.assortment` (``scripts/evaluate_assortment.py``) with the learned-policy wiring
  :mod:`~jaxretail.jobs.assortment_learning` (SIL, SRL, the paper's PPO);
* :mod:`~jaxretail.jobs.coupon_benchmark` (``scripts/coupon_benchmark.py``) on the Table-1 protocol of
  :mod:`~jaxretail.jobs.coupon_protocol` (configuration and the registry of offline agents), and
  :mod:`~jaxretail.jobs.coupon_sweep` (``scripts/coupon_sweep.py``, static coupons and random);
* :mod:`~jaxretail.jobs.pricing` (``scripts/evaluate_pricing.py``) with its studies in
  :mod:`~jaxretail.jobs.pricing_studies`;
* :mod:`~jaxretail.jobs.offers` (``scripts/evaluate_offers.py``).

Nothing below this layer imports it (``[tool.importlinter]`` in ``pyproject.toml``).
"""
