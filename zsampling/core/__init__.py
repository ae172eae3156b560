"""The core: levels, predictions, guidance, solvers, the sampling path and the protocols.

Everything else in zsampling is built on this layer, and this layer imports nothing else of
zsampling (tests/test_layers.py holds that). A component (sampler, schedule, adapter, ...) is
written against the protocols here; the registry checks plugins against the same protocols.
"""
