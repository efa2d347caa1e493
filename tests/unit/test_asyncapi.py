"""The AsyncAPI document (`docs/asyncapi.json`): regenerated in-process (no broker), it must equal the
committed file, parse as AsyncAPI 3 the way `faststream docs serve` reads it, give every channel a
message schema, and agree with the code and the contract it describes."""

from __future__ import annotations

import ast
import difflib
import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from faststream._internal._compat import model_parse
from faststream.specification.asyncapi.v3_0_0.schema import ApplicationSchema
from pydantic import BaseModel

from handlers.topology import build_topology
from service.asyncapi import (
    CHATBOT_TASKS,
    DEAD_LETTERS,
    DOCUMENT,
    REGENERATE,
    ChatbotTask,
    ChatbotTaskBatch,
    ChatbotTaskHeaders,
    DeadLetterReason,
    body_model,
    generate,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
ROUTES = list(build_topology().routes.values())


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return generate()


def test_the_committed_document_is_up_to_date() -> None:
    if not DOCUMENT.exists():
        pytest.fail(f"{DOCUMENT.relative_to(ROOT)} is missing: generate it with `{REGENERATE}`", pytrace=False)
    committed, current = DOCUMENT.read_text(encoding="utf-8"), render()
    if committed != current:
        diff = difflib.unified_diff(
            committed.splitlines(), current.splitlines(), "committed", "generated", n=1, lineterm=""
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(
            f"{DOCUMENT.relative_to(ROOT)} is out of date: regenerate it with `{REGENERATE}` and commit it.\n{shown}",
            pytrace=False,
        )


def test_the_document_parses_as_asyncapi_3_as_faststream_docs_serve_reads_it() -> None:
    schema = model_parse(ApplicationSchema, render().encode())
    assert schema.asyncapi == "3.0.0"


def _resolve(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    node: Any = document
    for part in ref["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def _message(document: dict[str, Any], channel: str) -> dict[str, Any]:
    (message_ref,) = document["channels"][channel]["messages"].values()
    return _resolve(document, message_ref)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.subscriber)
def test_every_inbound_route_has_its_queue_routing_key_and_body_schema(document: dict[str, Any], route: Any) -> None:
    channel = document["channels"][route.subscriber]
    assert channel["address"] == route.routing_key
    assert channel["bindings"]["amqp"]["queue"]["name"] == route.queue.name
    assert route.exchange.name in channel["description"]
    assert document["operations"][route.subscriber]["action"] == "receive"
    payload = _resolve(document, _message(document, route.subscriber)["payload"])
    expected = body_model(route).model_json_schema(ref_template="#/components/schemas/{model}")
    expected.pop("$defs", None)
    assert payload == expected
    assert payload.get("properties"), "an inbound message without a schema (FastStream's EmptyPayload)"


def test_chatbot_tasks_and_dead_letters_are_documented_as_sent(document: dict[str, Any]) -> None:
    topology = build_topology()
    tasks = document["channels"][CHATBOT_TASKS]
    assert tasks["address"] == "chatbot.sample.batch"
    assert tasks["bindings"]["amqp"]["exchange"] == {
        "name": topology.chatbot.name,
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": "/",
    }
    assert _resolve(document, _message(document, CHATBOT_TASKS)["payload"])["title"] == "ChatbotTaskBatch"
    dead = document["channels"][DEAD_LETTERS]
    assert "address" not in dead  # fanout: no routing key
    assert dead["bindings"]["amqp"]["exchange"]["name"] == topology.dead_letter_exchange.name
    assert dead["bindings"]["amqp"]["exchange"]["type"] == "fanout"
    dead_message = _message(document, DEAD_LETTERS)
    assert _resolve(document, dead_message["payload"]) == {
        "format": "binary",
        "title": "dead_letters:Message:Payload",
        "type": "string",
    }
    assert dead_message["contentType"] == "application/octet-stream"
    for name in (CHATBOT_TASKS, DEAD_LETTERS):
        assert document["operations"][name]["action"] == "send"
        assert document["operations"][name]["bindings"]["amqp"]["deliveryMode"] == 2  # persistent
        assert document["operations"][name]["bindings"]["amqp"]["mandatory"] is True
    assert "EmptyPayload" not in json.dumps(document)


def test_every_dead_letter_reason_the_handlers_produce_is_documented() -> None:
    produced: set[str] = set()
    for path in (ROOT / "handlers").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        produced |= set(re.findall(r'Unprocessable\(\s*"(\w+)"', source))
        produced |= set(re.findall(r'dead_letter\(\s*delivery,\s*"(\w+)"', source))
    assert produced == set(get_args(DeadLetterReason))


def _dict_keys(path: Path, function: str, variable: str) -> set[str]:
    """The keys of the dict literal assigned to `variable` (or passed as `variable=`) in `function`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    (func,) = [n for n in functions if n.name == function]
    for node in ast.walk(func):
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            value = node.value
        if isinstance(node, ast.keyword) and node.arg == variable:
            value = node.value
        if isinstance(value, ast.List) and value.elts:
            value = value.elts[0]
        if isinstance(value, ast.Dict):
            return {k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    raise AssertionError(f"no dict literal {variable} in {path.name}:{function}")


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_the_task_schema_has_the_keys_the_dispatcher_writes() -> None:
    assert _dict_keys(ROOT / "service" / "dispatcher.py", "_issue", "body") == _aliases(ChatbotTask)


def test_the_task_headers_are_the_ones_the_relay_sets() -> None:
    # `traceparent` is the publish span's, put in by `_trace_headers()` when telemetry is on.
    literal = _dict_keys(ROOT / "service" / "relay.py", "publish", "headers")
    assert literal | {"traceparent"} == _aliases(ChatbotTaskHeaders)


def _contract_examples() -> list[tuple[str, Any]]:
    """Every ```json block of docs/contract.md with the heading it sits under."""
    heading, examples = "", []
    for block in re.split(r"^```", (ROOT / "docs" / "contract.md").read_text(encoding="utf-8"), flags=re.M):
        if block.startswith("json\n"):
            examples.append((heading, json.loads(block.removeprefix("json\n"))))
        else:
            headings = re.findall(r"^#+ (.*)$", block, flags=re.M)
            heading = headings[-1] if headings else heading
    return examples


def test_the_contract_examples_match_the_documented_schemas() -> None:
    examples = _contract_examples()
    assert len(examples) >= 8
    for heading, example in examples:
        if "Chatbot tasks" in heading:
            ChatbotTaskBatch.model_validate(example)
            continue
        candidates = [r for r in ROUTES if f"`{r.name}" in heading]
        assert candidates, f"no route for the example under {heading!r}"
        errors = []
        for route in candidates:
            try:
                body_model(route).model_validate(example)
            except ValueError as exc:
                errors.append(exc)
        assert len(errors) < len(candidates), f"the example under {heading!r} fits no documented schema: {errors}"
