"""Quick start: twenty concurrent tasks, two model calls.

Run it with ``python docs/examples/quickstart.py``; the test suite runs it too.
"""

from __future__ import annotations

import trio

from coalesce import open_coordinator, result_text, text_request
from coalesce.testing import ScriptedClient


async def main() -> None:
    # A stand-in for a real model: it answers each task with its text upper-cased
    # and takes a second per call. Any SamplingClient works here.
    model = ScriptedClient(lambda task: task.upper(), latency=1.0)

    async with open_coordinator(model, window=0.5, max_batch=10) as coord:
        answers: dict[int, str] = {}

        async def ask(index: int) -> None:
            result = await coord.create_message(text_request(f"task {index}"))
            answers[index] = result_text(result)

        async with trio.open_nursery() as nursery:
            for index in range(20):
                nursery.start_soon(ask, index)

        print(f"{len(answers)} tasks answered with {coord.stats.model_calls} model calls")
        print(f"task 7 got {answers[7]!r}")


if __name__ == "__main__":
    trio.run(main)
