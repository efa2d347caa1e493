"""Deterministic identities other services can compute themselves (docs/contract.md, "Sample id")."""

from __future__ import annotations

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
    name = f"sample:{region.upper()}:{platform_product_id}:{creator}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
