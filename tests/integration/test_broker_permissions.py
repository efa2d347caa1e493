"""Least privilege on the broker: the users and permissions of `deploy/rabbitmq/definitions.json`,
applied to a fresh vhost of the local broker, let each role do its job and nothing else.

The vhost (`t<suffix>`) and the users (`<role>-<suffix>`, random passwords) are created here with
`rabbitmqctl` and always deleted afterwards; no other user or vhost is touched, except that the admin
of AMQP_URL (guest) is granted everything on the test vhost, which goes away with the vhost."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel
from faststream.rabbit import RabbitBroker
from yarl import URL

from handlers.topology import build_topology

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"
TOPOLOGY = build_topology()  # production names: no prefix, the vhost keeps the test apart
WORKER_QUEUE = "chatbot.worker.samples"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

Action = Callable[[AbstractChannel], Awaitable[object]]


def definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEFINITIONS.read_text())
    return loaded


def _rabbitmqctl_path() -> str | None:
    """The broker's own tool; Debian installs it in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which("rabbitmqctl", path=f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin")


def rabbitmqctl(*args: str, check: bool = True, stdin: str | None = None) -> str:
    executable = _rabbitmqctl_path() or "rabbitmqctl"
    done = subprocess.run([executable, "-q", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def admin_url() -> URL:
    url = os.environ.get("AMQP_URL")
    if not url or _rabbitmqctl_path() is None:
        message = "needs AMQP_URL and rabbitmqctl for the same local broker"
        if REQUIRE_SERVICES:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return URL(url)


@dataclass(frozen=True)
class Grants:
    vhost: str
    admin: str
    urls: dict[str, str]  # role, as named in the definitions file -> its URL on the test vhost


@pytest.fixture(scope="module")
def grants() -> Iterator[Grants]:
    """The file's users, permissions and topic permissions on a fresh vhost, the topology declared."""
    admin = admin_url()
    suffix = secrets.token_hex(4)
    vhost = f"t{suffix}"
    created_vhost = False
    created_users: list[str] = []
    try:
        rabbitmqctl("add_vhost", vhost)
        created_vhost = True
        rabbitmqctl("set_permissions", "-p", vhost, admin.user or "guest", ".*", ".*", ".*")
        defs = definitions()
        urls: dict[str, str] = {}
        for user in defs["users"]:
            name, password = f"{user['name']}-{suffix}", secrets.token_hex(16)  # never a leading "-"
            rabbitmqctl("add_user", name, password)
            created_users.append(name)
            rabbitmqctl("set_user_tags", name, *user["tags"])
            urls[user["name"]] = str(admin.with_user(name).with_password(password).with_path(f"/{vhost}"))
        for grant in defs["permissions"]:
            assert grant["vhost"] == "/", grant
            user = f"{grant['user']}-{suffix}"
            rabbitmqctl("set_permissions", "-p", vhost, user, grant["configure"], grant["write"], grant["read"])
        for topic in defs["topic_permissions"]:
            assert topic["vhost"] == "/", topic
            user = f"{topic['user']}-{suffix}"
            rabbitmqctl("set_topic_permissions", "-p", vhost, user, topic["exchange"], topic["write"], topic["read"])
        yield Grants(vhost, str(admin.with_path(f"/{vhost}")), urls)
    finally:
        if created_vhost:
            rabbitmqctl("delete_vhost", vhost, check=False)
        for name in created_users:
            rabbitmqctl("delete_user", name, check=False)


async def declare_topology(url: str) -> None:
    """What `sample-ledger run` declares (with `CHATBOT_DISPATCH_ENABLED`), through FastStream as the
    service does it."""
    broker = RabbitBroker(url)
    await broker.connect()
    try:
        dead = await broker.declare_queue(TOPOLOGY.dead_letter_queue)
        await dead.bind(await broker.declare_exchange(TOPOLOGY.dead_letter_exchange))
        await broker.declare_exchange(TOPOLOGY.chatbot)
        for route in TOPOLOGY.routes.values():
            queue = await broker.declare_queue(route.queue)
            await queue.bind(await broker.declare_exchange(route.exchange), routing_key=route.routing_key)
    finally:
        await broker.stop()


@pytest.fixture(scope="module")
async def topology(grants: Grants) -> Grants:
    await declare_topology(grants.admin)
    connection = await aio_pika.connect(grants.admin, timeout=10)
    try:  # a worker's queue already there, whichever case runs first
        await declare_queue(WORKER_QUEUE)(await connection.channel())
    finally:
        await connection.close()
    return grants


def publish(exchange: str, routing_key: str) -> Action:
    async def act(channel: AbstractChannel) -> object:
        target = await channel.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(b"{}", message_id=secrets.token_hex(8), content_type="application/json")
        return await target.publish(message, routing_key=routing_key)  # awaited until the broker confirms

    return act


def publish_to_queue(queue: str) -> Action:
    """Straight to a queue, through the default exchange (what the consumer watchdog's probes do)."""

    async def act(channel: AbstractChannel) -> object:
        message = aio_pika.Message(b"", message_id=secrets.token_hex(8))
        return await channel.default_exchange.publish(message, routing_key=queue)

    return act


def read(queue: str) -> Action:
    async def act(channel: AbstractChannel) -> object:
        found = await channel.declare_queue(queue, passive=True)  # a passive declare needs no permission
        return await found.get(no_ack=False, fail=False)  # unacked: the closing channel gives it back

    return act


def declare_queue(name: str) -> Action:
    async def act(channel: AbstractChannel) -> object:
        return await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})

    return act


def bind_worker_queue(exchange: str, binding_key: str) -> Action:
    """A worker declares its own queue, binds it and reads from it."""

    async def act(channel: AbstractChannel) -> object:
        queue = await channel.declare_queue(WORKER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, routing_key=binding_key)
        return await queue.get(no_ack=False, fail=False)

    return act


async def outcome(url: str, action: Action) -> str:
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await action(channel)
        except aiormq.exceptions.ChannelAccessRefused:
            return "refused"
        return "allowed"
    finally:
        await connection.close()


ALLOWED, REFUSED = "allowed", "refused"
INGEST, WEBHOOKS, STATE, CHATBOT = "ledger.ingest", "ledger.webhooks", "ledger.state", "chatbot.topic"
CASES: list[tuple[str, str, Action, str]] = [
    # role, what it tries, how, expected
    ("collector", "publish samples.crawled to ledger.ingest", publish(INGEST, "samples.crawled"), ALLOWED),
    ("collector", "publish creators.crawled to ledger.ingest", publish(INGEST, "creators.crawled"), ALLOWED),
    ("collector", "publish a webhook key to ledger.ingest", publish(INGEST, "tiktok.shop.56"), REFUSED),
    ("collector", "publish to chatbot.topic", publish(CHATBOT, "chatbot.sample.batch"), REFUSED),
    ("collector", "publish to ledger.state", publish(STATE, "sample.status_reported"), REFUSED),
    ("collector", "publish to ledger.webhooks", publish(WEBHOOKS, "tiktok.shop.56"), REFUSED),
    ("collector", "read ledger.dead", read("ledger.dead"), REFUSED),
    ("collector", "read its inbound queue", read("ledger.ingest.samples"), REFUSED),
    ("collector", "declare a queue", declare_queue("ledger.collector.own"), REFUSED),
    ("collector", "publish straight to an inbound queue", publish_to_queue("ledger.ingest.samples"), REFUSED),
    ("webhook-gateway", "publish tiktok.shop.56 to ledger.webhooks", publish(WEBHOOKS, "tiktok.shop.56"), ALLOWED),
    ("webhook-gateway", "publish a non-webhook key to ledger.webhooks", publish(WEBHOOKS, "tiktok.x"), REFUSED),
    ("webhook-gateway", "publish to ledger.ingest", publish(INGEST, "samples.crawled"), REFUSED),
    ("webhook-gateway", "publish to ledger.state", publish(STATE, "sample.status_reported"), REFUSED),
    ("webhook-gateway", "read ledger.webhooks.tiktok", read("ledger.webhooks.tiktok"), REFUSED),
    ("chatbot-worker", "own queue bound to chatbot.topic", bind_worker_queue(CHATBOT, "chatbot.sample.batch"), ALLOWED),
    ("chatbot-worker", "own queue bound to chatbot.topic with #", bind_worker_queue(CHATBOT, "#"), REFUSED),
    ("chatbot-worker", "own queue bound to ledger.state", bind_worker_queue(STATE, "chatbot.result"), REFUSED),
    ("chatbot-worker", "publish chatbot.result to ledger.state", publish(STATE, "chatbot.result"), ALLOWED),
    ("chatbot-worker", "publish sample.status_reported", publish(STATE, "sample.status_reported"), REFUSED),
    ("chatbot-worker", "publish creator.messaging", publish(STATE, "creator.messaging"), REFUSED),
    ("chatbot-worker", "publish to chatbot.topic", publish(CHATBOT, "chatbot.sample.batch"), REFUSED),
    ("chatbot-worker", "publish to ledger.ingest", publish(INGEST, "samples.crawled"), REFUSED),
    ("chatbot-worker", "read ledger.state.chatbot_results", read("ledger.state.chatbot_results"), REFUSED),
    ("chatbot-worker", "declare a ledger queue", declare_queue("ledger.worker.own"), REFUSED),
    ("operator", "read ledger.dead", read("ledger.dead"), ALLOWED),
    ("operator", "replay to ledger.ingest", publish(INGEST, "samples.crawled"), ALLOWED),
    ("operator", "replay to ledger.webhooks", publish(WEBHOOKS, "tiktok.shop.56"), ALLOWED),
    ("operator", "replay to ledger.state", publish(STATE, "sample.status_reported"), ALLOWED),
    ("operator", "read an inbound queue", read("ledger.ingest.samples"), REFUSED),
    ("operator", "publish to chatbot.topic", publish(CHATBOT, "chatbot.sample.batch"), REFUSED),
    ("operator", "publish to ledger.dlx", publish("ledger.dlx", "samples.crawled"), REFUSED),
    ("operator", "declare a queue", declare_queue("ledger.operator.own"), REFUSED),
    ("sample-ledger", "publish a chatbot task", publish(CHATBOT, "chatbot.sample.batch"), ALLOWED),
    ("sample-ledger", "dead-letter to ledger.dlx", publish("ledger.dlx", "samples.crawled"), ALLOWED),
    ("sample-ledger", "consume an inbound queue", read("ledger.ingest.samples"), ALLOWED),
    ("sample-ledger", "read a worker's queue", read(WORKER_QUEUE), REFUSED),
    ("sample-ledger", "declare a queue outside ledger.*", declare_queue("chatbot.worker.other"), REFUSED),
    ("sample-ledger", "publish to amq.topic", publish("amq.topic", "anything"), REFUSED),
    ("sample-ledger", "probe its inbound queue", publish_to_queue("ledger.ingest.samples"), ALLOWED),
]


async def test_the_service_can_declare_its_topology(topology: Grants) -> None:
    # Every declaration repeats the admin's exactly, so each one checks the configure permission
    # (and, for the queues, the dead-letter exchange's) rather than creating anything.
    await declare_topology(topology.urls["sample-ledger"])
    assert await outcome(topology.urls["sample-ledger"], declare_queue("ledger.scratch")) == ALLOWED


@pytest.mark.parametrize(("role", "what", "action", "expected"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
async def test_each_role_only_inside_its_grant(
    topology: Grants, role: str, what: str, action: Action, expected: str
) -> None:
    assert await outcome(topology.urls[role], action) == expected, f"{role} may not {what}"


def test_every_role_is_tested() -> None:
    assert {user["name"] for user in definitions()["users"]} == {case[0] for case in CASES}


def test_demo_password_hashes_match_the_documented_demo_passwords() -> None:
    """`<user>-demo-only`, salted SHA-256 as `rabbit_password_hashing_sha256` computes it."""
    for user in definitions()["users"]:
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        assert hashlib.sha256(salt + f"{user['name']}-demo-only".encode()).digest() == digest, user["name"]


async def test_the_file_imports_and_its_demo_passwords_log_in() -> None:
    """`rabbitmqctl import_definitions` accepts the file (users, vhost and names suffixed so nothing
    existing is touched), and each imported user logs in with its documented demo password."""
    admin = admin_url()
    suffix = secrets.token_hex(4)
    vhost = f"t{suffix}"
    defs = definitions()
    renamed = {user["name"]: f"{user['name']}-{suffix}" for user in defs["users"]}
    copy = dict(defs)
    copy["vhosts"] = [{"name": vhost}]
    copy["users"] = [{**user, "name": renamed[user["name"]]} for user in defs["users"]]
    copy["permissions"] = [{**p, "user": renamed[p["user"]], "vhost": vhost} for p in defs["permissions"]]
    copy["topic_permissions"] = [{**t, "user": renamed[t["user"]], "vhost": vhost} for t in defs["topic_permissions"]]
    assert copy["vhosts"] != defs["vhosts"]
    assert not set(renamed.values()) & set(renamed)
    try:
        rabbitmqctl("import_definitions", stdin=json.dumps(copy))
        listed = rabbitmqctl("list_permissions", "-p", vhost, "--formatter", "json")
        got = {(p["user"], p["configure"], p["write"], p["read"]) for p in json.loads(listed)}
        want = {(renamed[p["user"]], p["configure"], p["write"], p["read"]) for p in defs["permissions"]}
        assert got == want
        listed = rabbitmqctl("list_topic_permissions", "-p", vhost, "--formatter", "json")
        got = {(p["user"], p["exchange"], p["write"], p["read"]) for p in json.loads(listed)}
        want = {(renamed[t["user"]], t["exchange"], t["write"], t["read"]) for t in defs["topic_permissions"]}
        assert got == want
        for original, name in renamed.items():
            url = admin.with_user(name).with_password(f"{original}-demo-only").with_path(f"/{vhost}")
            connection = await aio_pika.connect(str(url), timeout=10)
            await connection.close()
    finally:
        rabbitmqctl("delete_vhost", vhost, check=False)
        for name in renamed.values():
            rabbitmqctl("delete_user", name, check=False)
