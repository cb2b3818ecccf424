"""Benchmarks for coalesce (``nox -s bench``, or ``python -m benchmarks``).

- :mod:`benchmarks.simulate`: the batching policies side by side, in trio's
  virtual time, against a simulated model (:mod:`benchmarks.model`), streaming
  and not, with the Rust coordinator's policy (:mod:`benchmarks.rust_policy`)
  as the reference.
- :mod:`benchmarks.adaptive`: adaptive coalescing against models that never,
  always, or eventually follow the batch format.
- :mod:`benchmarks.overhead`: the coordinator's CPU cost per request on trio
  and asyncio, as a ratio to a direct call to the same instant client, and
  how it grows with the number of requests pending.
- :mod:`benchmarks.demux`: reading replies, as a ratio to a bare
  ``json.loads``: large, small, chunked and hostile.
- :mod:`benchmarks.memory`: peak bytes per queued request.
- :mod:`benchmarks.importtime`: how long ``import coalesce`` takes.

Every benchmark runs and every target is checked and printed, whatever
fails; ``python -m benchmarks`` then exits 1 if any target was missed, and
names each one on stderr.
"""
