"""An inbound message is freed when its handler is done, without waiting for a garbage collection:
FastStream keeps the decoded body on the message, and the service's decoder makes that the message
itself (service/app.py `delivered_as_is`), a reference cycle the handler must break. Bodies run to
16 MiB, and the collector runs rarely (service/garbage.py)."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace
from typing import Any

from faststream.rabbit.message import RabbitMessage

from handlers.inbound import Outcome, Taken
from service.app import _handler, delivered_as_is
from service.consumer_watch import ConsumerWatch
from service.telemetry import Telemetry


class Recording:
    async def take(self, message: Any, build_event: Any) -> Taken:
        return Taken(Outcome.NEW)


async def test_a_handled_message_is_freed_at_once() -> None:
    route = SimpleNamespace(queue=SimpleNamespace(name="ledger.ingest.samples"), routing_key="samples.crawled",
                            build=lambda delivery: None, subscriber="on_samples_crawled")  # fmt: skip
    handle = _handler(route, Recording, ConsumerWatch(["ledger.ingest.samples"]), Telemetry.off())  # type: ignore[arg-type]
    message = RabbitMessage(raw_message=SimpleNamespace(headers={}), body=b"{}")  # type: ignore[arg-type]
    message.set_decoder(delivered_as_is)
    gc.disable()
    try:
        assert await message.decode() is message  # as FastStream calls it before the handler
        await handle(message)
        freed = weakref.ref(message)
        del message
        assert freed() is None, "the message outlived its handler (a reference cycle)"
    finally:
        gc.enable()
