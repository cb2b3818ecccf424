"""Coverage-guided fuzzing of the demux with atheris (libFuzzer for Python).

Run from the project's root, where atheris installs (Linux x86-64; see
``docs/howto/fuzzing.rst``)::

    python -m tests.fuzz.atheris_demux tests/fuzz/corpus -max_total_time=60

Every input is used twice. First as a model's reply, byte for byte (invalid
UTF-8 becoming lone surrogates), checked by :func:`tests.fuzz.checks.check_reply_text`
for 3 tasks: read whole, and fed to a reader in chunks whose size the input's
first byte chooses, which must agree. Then as the recipe for a round trip:
answers for a batch of requests built with :func:`coalesce.build_batch_request`,
written as the model's reply (fenced or not, cut short or not), which must
come back with each task's own answer, or an error naming it, whole and
chunk-fed alike.
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["coalesce"]):
    from coalesce import build_batch_request
    from coalesce._demux import split_text

from mcp.types import CreateMessageRequestParams, SamplingMessage, TextContent

from tests.fuzz.checks import check_reply_text, decode_input, read_in_chunks
from tests.strategies import ModelReply


def _request(text: str) -> CreateMessageRequestParams:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequestParams(messages=[message], max_tokens=16)


def round_trip(data: bytes) -> None:
    """Build a batch and a model's reply to it from *data*; check what the demux makes of it."""
    fdp = atheris.FuzzedDataProvider(data)
    n_tasks = fdp.ConsumeIntInRange(1, 6)
    answers = [fdp.ConsumeUnicode(24) for _ in range(n_tasks)]
    batch = build_batch_request([_request(answer[::-1]) for answer in answers])
    tasks = json.loads(batch.messages[0].content.text)["tasks"]  # type: ignore[union-attr]
    order = sorted(range(n_tasks), key=lambda _: fdp.ConsumeInt(1))
    text = json.dumps(
        [{"task_index": tasks[i]["task_index"], "response": answers[i]} for i in order],
        ensure_ascii=fdp.ConsumeBool(),
    )
    if fdp.ConsumeBool():
        text = "```json\n" + text + "\n```"
    cut = fdp.ConsumeBool()
    if cut:
        text = text[: fdp.ConsumeIntInRange(0, len(text))]
    reply = ModelReply(text, dict(enumerate(answers)), frozenset(), cut)
    reply.check(split_text(text, n_tasks), n_tasks)
    step = fdp.ConsumeIntInRange(1, 64)
    reply.check(read_in_chunks(text, n_tasks, list(range(step, len(text), step))), n_tasks)


def test_one_input(data: bytes) -> None:
    """The fuzz target: atheris calls it with each input it makes."""
    text = decode_input(data)
    step = 1 + (data[0] % 17 if data else 0)
    check_reply_text(text, 3, list(range(step, len(text), step)))
    round_trip(data)


def main() -> None:
    """Fuzz until libFuzzer's own options (``-max_total_time``, ``-runs``) say stop."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
