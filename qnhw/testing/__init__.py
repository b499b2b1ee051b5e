"""Testing aids: reference implementations of every contract and the conformance kit.

* :mod:`qnhw.testing.reference` -- in-memory reference devices and
  :func:`~qnhw.testing.reference.reference_server`.
* :mod:`qnhw.testing.conformance` -- the pytest-parametrizable suite that proves an endpoint
  (emulator or real device server) honours its contract.
"""
