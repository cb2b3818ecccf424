"""The exceptions :mod:`coalesce` raises.

Every error the library raises on its own account derives from
:class:`CoalesceError`, and also from the builtin a caller would already catch
for that kind of failure (``ValueError`` for a bad reply, ``RuntimeError`` for
a failed or closed coordinator), in the way attrs and trio arrange theirs.

Misuse (a wrong type or value passed in) raises plain ``TypeError`` or
``ValueError``. Any other exception that escapes the library is a bug.
"""

from __future__ import annotations

__all__ = ["BatchCallError", "CoalesceError", "CoordinatorClosed", "TaskError"]

EXCERPT_CHARS = 200
"""How much of a model reply an error message quotes, at most."""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Return *text* cut to at most *limit* characters, marking any cut.

    Error messages quote the reply that caused them, but never a whole
    megabyte of it.
    """
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


class CoalesceError(Exception):
    """Base class of every error that :mod:`coalesce` raises on its own account."""


class CoordinatorClosed(CoalesceError, RuntimeError):
    """The coordinator is closed, or closed while this request waited.

    Raised by :meth:`Coordinator.create_message` when it is called after the
    coordinator's ``async with`` block has ended, and delivered to every
    request still queued or in flight when that block is left by an exception
    or a cancellation.
    """


class TaskError(CoalesceError, ValueError):
    """This task's answer could not be taken from the coalesced reply.

    The model answered the batch, but not this task in a usable way: its entry
    was missing, had no ``response``, was given twice with different texts, or
    the whole reply could not be read. The other tasks of the same batch may
    well have their answers.

    Attributes:
        task_index: The task's position in the coalesced request (0-based).
        reason: What was wrong, in a few words (without the excerpt).
        reply_excerpt: A short excerpt of the model's reply, for debugging.
    """

    task_index: int
    reason: str
    reply_excerpt: str

    def __init__(self, task_index: int, reason: str, reply_excerpt: str = "") -> None:
        self.task_index = task_index
        self.reason = reason
        self.reply_excerpt = excerpt(reply_excerpt)
        message = f"task {task_index}: {reason}"
        if reply_excerpt:
            message += f" (reply began: {self.reply_excerpt!r})"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[TaskError], tuple[int, str, str]]:
        return (type(self), (self.task_index, self.reason, self.reply_excerpt))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskError):
            return NotImplemented
        return (self.task_index, self.reason, self.reply_excerpt) == (
            other.task_index,
            other.reason,
            other.reply_excerpt,
        )

    def __hash__(self) -> int:
        return hash((self.task_index, self.reason, self.reply_excerpt))


class BatchCallError(CoalesceError, RuntimeError):
    """The coalesced call to the client failed, so no task of it got an answer.

    Raised ``from`` the client's own exception, which is kept as
    ``__cause__``. A request that went alone (a batch of one) never gets this
    error: the client's exception reaches its caller unchanged, as it would
    from a direct call.

    Attributes:
        batch_size: How many requests shared the failed call.
    """

    batch_size: int

    def __init__(self, message: str, batch_size: int) -> None:
        self.batch_size = batch_size
        super().__init__(message)

    def __reduce__(self) -> tuple[type[BatchCallError], tuple[str, int]]:
        return (type(self), (str(self), self.batch_size))
