"""The seed's six tests (``sampling_coordinator.rs``), ported one for one with their names.

They run in virtual time (pytest-trio's ``autojump_clock``), so the seed's
windows cost nothing and the timing assertions are exact.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from coalesce import BatchCallError, TaskError, open_coordinator
from coalesce.testing import CannedClient, replies, result_text, text_request


def coalesced_response_for(n_tasks: int) -> str:
    return replies([f"response-{i}" for i in range(n_tasks)])


async def test_coalesces_n_concurrent_submissions_into_one_create_message_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = CannedClient(default=coalesced_response_for(3))
    results: dict[str, str] = {}
    async with open_coordinator(fake, window=0.1, max_batch=10) as coord:

        async def submit(prompt: str) -> None:
            results[prompt] = result_text(await coord.create_message(text_request(prompt)))

        async with trio.open_nursery() as nursery:
            for prompt in ["task-A", "task-B", "task-C"]:
                nursery.start_soon(submit, prompt)
                await trio.testing.wait_all_tasks_blocked()

    assert fake.calls == 1, "coordinator must coalesce 3 submissions into 1 inner call"
    assert results == {"task-A": "response-0", "task-B": "response-1", "task-C": "response-2"}


async def test_flushes_at_max_batch_before_window_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = CannedClient(default=coalesced_response_for(2))
    async with open_coordinator(fake, window=5.0, max_batch=2) as coord:
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coord.create_message, text_request("task-A"))
            nursery.start_soon(coord.create_message, text_request("task-B"))
        elapsed = trio.current_time() - started
    assert elapsed < 2.0, f"max_batch must flush before window expires; took {elapsed}"
    assert elapsed == 0.0
    assert fake.calls == 1


async def test_single_submission_passes_through_unwrapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = CannedClient(default="direct-response")
    async with open_coordinator(fake, window=0.05, max_batch=10) as coord:
        params = text_request("lonely-task")
        result = await coord.create_message(params)
    assert fake.calls == 1
    assert fake.requests[0] is params, "single-batch path must NOT wrap the prompt"
    assert result_text(result) == "direct-response"


async def test_window_expiry_flushes_each_submission_individually(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = CannedClient(["r-first", "r-second"])
    async with open_coordinator(fake, window=0.02, max_batch=10) as coord:
        r1 = await coord.create_message(text_request("first"))
        await trio.sleep(0.05)
        r2 = await coord.create_message(text_request("second"))
    assert fake.calls == 2
    assert result_text(r1) == "r-first"
    assert result_text(r2) == "r-second"


async def test_demux_propagates_per_request_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    response = json.dumps(
        [{"task_index": 0, "response": "ok-0"}, {"task_index": 2, "response": "ok-2"}]
    )
    fake = CannedClient([response])
    outcomes: dict[int, object] = {}
    # The seed had no per-task retry; retry_alone=False keeps its behaviour.
    async with open_coordinator(fake, window=0.1, max_batch=10, retry_alone=False) as coord:

        async def submit(index: int) -> None:
            try:
                outcomes[index] = result_text(await coord.create_message(text_request(f"t{index}")))
            except TaskError as error:
                outcomes[index] = error

        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(submit, index)
                await trio.testing.wait_all_tasks_blocked()

    assert outcomes[0] == "ok-0"
    assert isinstance(outcomes[1], TaskError), "missing task_index must surface as error"
    assert outcomes[1].task_index == 1
    assert outcomes[2] == "ok-2"


async def test_coalesced_rpc_failure_surfaces_to_every_submission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failure = ConnectionError("simulated transport failure")
    fake = CannedClient(default=failure)
    errors: list[BatchCallError] = []
    async with open_coordinator(fake, window=0.1, max_batch=10) as coord:

        async def submit(prompt: str) -> None:
            with pytest.raises(
                BatchCallError, match=r"^the coalesced call of 2 requests failed"
            ) as info:
                await coord.create_message(text_request(prompt))
            errors.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit, "a")
            nursery.start_soon(submit, "b")
    assert len(errors) == 2
    assert all(error.__cause__ is failure for error in errors)
    assert errors[0] is not errors[1]
