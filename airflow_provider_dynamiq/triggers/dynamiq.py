"""Triggers that wait in the triggerer for an end user to be ready or for an App run to finish.

Both are async end to end: they read the connection with ``aget_connection`` and poll with
``httpx.AsyncClient``. All triggers of one connection in a triggerer process share one hook,
so a thousand waiting tasks cost one connection read and one connection pool, not a thousand.

Events are plain JSON: ``{"status": "success" | "error" | "timeout", "message": ..., ...}``.
They carry ids and statuses, never a credential.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dynamiq._deferral import error_fields
from airflow_provider_dynamiq.exceptions import TRANSIENT_ERRORS, DynamiqError, DynamiqRunError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook



class _SharedHooks:
    """Hooks shared by the triggers of one event loop, one per connection id, closed by the last user."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[DynamiqHook, list[int]]] = {}

    @asynccontextmanager
    async def hook(self, conn_id: str) -> AsyncIterator[DynamiqHook]:
        key = (id(asyncio.get_running_loop()), conn_id)
        # No await between the lookup and the insert, so concurrent triggers get the same hook.
        if key not in self._entries:
            self._entries[key] = (DynamiqHook(dynamiq_conn_id=conn_id), [0])
        hook, users = self._entries[key]
        users[0] += 1
        try:
            yield hook
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._entries[key]
                await hook.aclose()

    def __len__(self) -> int:
        return len(self._entries)


SHARED_HOOKS = _SharedHooks()


class _PollingTrigger(BaseTrigger):
    """Poll at a fixed rate until a check returns an event, an error is fatal, or the deadline passes.

    The first poll comes after a random 50 to 100% of the interval, so that tasks deferred at
    the same moment (a mapped sensor, a backfill) spread their polls instead of sending them in
    one burst every interval.
    """

    def __init__(self, *, dynamiq_conn_id: str, poll_interval: float, timeout_at: float | None) -> None:
        super().__init__()
        if not 0 < poll_interval < float("inf"):
            raise ValueError(f"poll_interval must be a positive, finite number of seconds, got {poll_interval!r}.")
        self.dynamiq_conn_id = dynamiq_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        #: The last state seen, for the timeout message, e.g. "last status 'started'".
        self.last_state = ""

    async def check(self, hook: DynamiqHook) -> dict[str, Any] | None:
        """Poll once; return the final event payload, or ``None`` to keep waiting."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return what the trigger waits for, for log lines and messages."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        first_due = loop.time() + self.poll_interval * random.uniform(0.5, 1.0)
        polls = 0
        async with SHARED_HOOKS.hook(self.dynamiq_conn_id) as hook:
            while True:
                # Fixed rate: each poll is due one interval after the previous one was due,
                # however long that poll took, so waits do not drift.
                due = first_due + polls * self.poll_interval
                polls += 1
                wait = due - loop.time()
                remaining = self._seconds_left()
                # When the deadline comes before the next poll, poll once more at the deadline.
                last_chance = remaining is not None and remaining <= wait
                await asyncio.sleep(max(remaining if last_chance else wait, 0))
                payload = await self._poll_once(hook)
                if payload is not None:
                    yield TriggerEvent({**payload, **self.ids()})
                    return
                if last_chance or (self.timeout_at is not None and self._seconds_left() <= 0):
                    waited = time.monotonic() - started
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"Timed out after {waited:.0f} s waiting for {self.describe()}"
                            + (f" ({self.last_state})." if self.last_state else "."),
                            **self.ids(),
                        }
                    )
                    return

    async def _poll_once(self, hook: DynamiqHook) -> dict[str, Any] | None:
        """Poll once; return a final payload, or ``None`` to keep waiting after a transient error."""
        try:
            return await self.check(hook)
        except TRANSIENT_ERRORS as error:
            self.log.warning("Polling %s failed; polling again in %g s. %s", self.describe(), self.poll_interval, error)
            return None
        except DynamiqError as error:
            return {"status": "error", "message": str(error), **error_fields(error)}

    def ids(self) -> dict[str, Any]:
        """Return the ids that every event of this trigger carries."""
        raise NotImplementedError

    def _seconds_left(self) -> float | None:
        return None if self.timeout_at is None else self.timeout_at - time.time()


class DynamiqRequirementsTrigger(_PollingTrigger):
    """Wait until end user ``user_id`` has met every requirement of the App.

    Transient failures (network errors, 5xx, 429, unreadable bodies) are logged and polled
    again; other API errors end the wait with an ``error`` event.

    :param user_id: the end user's id.
    :param dynamiq_conn_id: Dynamiq connection id.
    :param poll_interval: seconds between checks.
    :param timeout_at: Unix time after which the trigger sends a ``timeout`` event; ``None``
        waits without a deadline.
    """

    def __init__(
        self,
        *,
        user_id: str,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        poll_interval: float = 60.0,
        timeout_at: float | None = None,
    ) -> None:
        super().__init__(dynamiq_conn_id=dynamiq_conn_id, poll_interval=poll_interval, timeout_at=timeout_at)
        self.user_id = user_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "user_id": self.user_id,
                "dynamiq_conn_id": self.dynamiq_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
            },
        )

    def describe(self) -> str:
        return f"the requirements of user {self.user_id!r}"

    def ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id}

    async def check(self, hook: DynamiqHook) -> dict[str, Any] | None:
        status = await hook.aget_requirements_status(self.user_id)
        if status.readiness().ready:
            return {"status": "success", "requirements_status": status.status}
        self.last_state = f"last status {status.status!r}, {len(status.unsatisfied)} unsatisfied"
        self.log.info(
            "User %s is not ready: %d unsatisfied requirement(s).", self.user_id, len(status.unsatisfied)
        )
        return None


class DynamiqRunTrigger(_PollingTrigger):
    """Wait until App run ``run_id`` has finished.

    Sends ``success`` when the run completes, ``error`` when it fails, is canceled, or (with
    ``fail_on_awaiting_input``) waits for human input, and ``timeout`` at the deadline. When
    the task is killed while deferred, the run is canceled.

    :param run_id: UUID of the run.
    :param dynamiq_conn_id: Dynamiq connection id.
    :param poll_interval: seconds between checks.
    :param timeout_at: Unix time after which the trigger sends a ``timeout`` event.
    :param fail_on_awaiting_input: end with an error when the run waits for human input,
        instead of waiting for someone to respond.
    :param cancel_on_kill: cancel the run when the deferred task is killed.
    """

    def __init__(
        self,
        *,
        run_id: str,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        poll_interval: float = 10.0,
        timeout_at: float | None = None,
        fail_on_awaiting_input: bool = False,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__(dynamiq_conn_id=dynamiq_conn_id, poll_interval=poll_interval, timeout_at=timeout_at)
        self.run_id = run_id
        self.fail_on_awaiting_input = fail_on_awaiting_input
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "run_id": self.run_id,
                "dynamiq_conn_id": self.dynamiq_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "fail_on_awaiting_input": self.fail_on_awaiting_input,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def describe(self) -> str:
        return f"run {self.run_id}"

    def ids(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    async def check(self, hook: DynamiqHook) -> dict[str, Any] | None:
        run = await hook.aget_run(self.run_id)
        outcome = run.evaluate(fail_on_awaiting_input=self.fail_on_awaiting_input)
        if not outcome.done:
            self.last_state = f"last status {run.status!r}"
            self.log.info("%s", outcome.message)
            return None
        payload = {
            "status": "success" if outcome.succeeded else "error",
            "run_status": run.status,
            "message": outcome.message,
        }
        if not outcome.succeeded:
            payload["error_class"] = DynamiqRunError.__name__
        return payload

    async def on_kill(self) -> None:
        """Cancel the run, because the task waiting for it was killed."""
        if not self.cancel_on_kill:
            return
        async with SHARED_HOOKS.hook(self.dynamiq_conn_id) as hook:
            try:
                await hook.acancel_run(self.run_id)
            except DynamiqError as error:
                self.log.error("Failed to cancel run %s after the task was killed: %s", self.run_id, error)
                return
        self.log.info("Canceled run %s because the task was killed.", self.run_id)
