"""coalesce on asyncio: twenty concurrent tasks with asyncio.gather, two model calls.

The same coordinator as on trio; ``asyncio.gather`` (or an ``asyncio.TaskGroup``)
starts the tasks. A stand-in model answers here; any ``SamplingClient`` works
(an MCP server session, a model adapter such as ``OpenAIClient``).
"""

import asyncio

import coalesce
from coalesce.testing import ScriptedClient


async def main() -> None:
    model = ScriptedClient(lambda text: text.upper())
    async with coalesce.open_coordinator(model, window=0.05, max_batch=10) as coord:
        results = await asyncio.gather(
            *(coord.create_message(coalesce.text_request(f"task {i}")) for i in range(20))
        )
    print(f"{len(results)} tasks answered with {model.calls} model calls")
    print(f"task 7 got {coalesce.result_text(results[7])!r}")


if __name__ == "__main__":
    asyncio.run(main())
