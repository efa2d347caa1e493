"""Keys arrive in camelCase or snake_case; look a field up by its camelCase name in either form."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


@lru_cache(maxsize=256)
def snake(camel: str) -> str:
    return _UPPER.sub("_", camel).lower()


def pick(row: dict[str, Any], camel: str) -> Any:
    """The value under `camel` or its snake_case twin; None when neither is present."""
    value = row.get(camel)
    if value is None:
        value = row.get(snake(camel))
    return value


def first(row: dict[str, Any], *camels: str) -> Any:
    """The first present (non-null, non-empty) value among several field names."""
    for name in camels:
        value = pick(row, name)
        if value is not None and value != "":
            return value
    return None
