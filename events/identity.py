"""Deterministic identities other services can compute themselves (docs/contract.md, "Sample id")."""

from __future__ import annotations

import hashlib
import uuid


def creator_key(platform_creator_id: str | None, username: str | None) -> str | None:
    """The creator part of a sample's key: the platform id, else the @handle lower-cased without @."""
    creator_id = (platform_creator_id or "").strip()
    if creator_id:  # a blank id is no id: the handle identifies the creator then
        return creator_id
    if username:
        handle = username.strip().lower().lstrip("@")
        return handle or None
    return None


def sample_id(region: str, platform_product_id: str, creator: str) -> str:
    return uuid5_text(uuid.NAMESPACE_URL, f"sample:{region.upper()}:{platform_product_id}:{creator}")


# RFC 4122 name-based ids (version 5), computed as `uuid.uuid5` does them but without building a
# `uuid.UUID` on the way to text: every crawl row gets a sample id and every derived event an event
# id, and the standard library's object construction and formatting were two thirds of the cost.


def _uuid5_bytes(namespace: uuid.UUID, name: str) -> bytes:
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])  # noqa: S324 (RFC 4122 v5)
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return bytes(digest)


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`, several times faster."""
    hexed = _uuid5_bytes(namespace, name).hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """`uuid.uuid5(namespace, name)`, about twice as fast."""
    return uuid.UUID(bytes=_uuid5_bytes(namespace, name))
