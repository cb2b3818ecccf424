"""Benchmarks for coalesce (``nox -s bench``, or ``python -m benchmarks``).

- :mod:`benchmarks.simulate`: the batching policies side by side, in trio's
  virtual time, against a simulated model (:mod:`benchmarks.model`), with the
  Rust coordinator's policy (:mod:`benchmarks.rust_policy`) as the reference.
- :mod:`benchmarks.overhead`: the coordinator's CPU cost per request, as a
  ratio to a direct call to the same instant client.
- :mod:`benchmarks.demux`: demultiplexing throughput on large replies, as a
  ratio to a bare ``json.loads``.
- :mod:`benchmarks.memory`: peak bytes per queued request.
- :mod:`benchmarks.importtime`: how long ``import coalesce`` takes.

Every target is checked; ``python -m benchmarks`` exits non-zero and names
each one that failed.
"""
