"""TikTok Shop webhook signatures (CONTRACT.md "tiktok.shop.<type>"): lower-case hex HMAC-SHA256, keyed by the
app secret, over the app key followed by the raw body."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from events.webhooks import expected_signature, signature_matches

APP_KEY = "demo_key"
APP_SECRET = "demo_secret"
BODY = b'{"type":3}'
# Computed once in a shell: hmac.new(b"demo_secret", b"demo_key" + b'{"type":3}', hashlib.sha256).hexdigest()
KNOWN = "a3f9873dff377d2af922259379a14ee10901433feac7d735477ba5e13a9ec11e"


def test_the_signature_is_the_hmac_of_key_then_body_keyed_by_the_secret() -> None:
    by_hand = hmac.new(b"demo_secret", b"demo_key" + b'{"type":3}', hashlib.sha256).hexdigest()
    assert expected_signature(APP_KEY, APP_SECRET, BODY) == by_hand == KNOWN


def test_known_value_of_an_empty_body() -> None:
    assert (
        expected_signature("key", "s3cret", b"") == "91092eb829c8539540c2b980943a9b61b09179872bb23c60474eeef2f2b191ac"
    )


def test_key_and_secret_are_not_interchangeable_and_the_body_counts_byte_for_byte() -> None:
    assert expected_signature(APP_SECRET, APP_KEY, BODY) != KNOWN
    assert expected_signature(APP_KEY, APP_SECRET, b'{"type": 3}') != KNOWN
    assert expected_signature(APP_KEY, APP_SECRET, BODY + b"\n") != KNOWN


@pytest.mark.parametrize("presented", [KNOWN, f"  {KNOWN}\n", f"\t{KNOWN} "])
def test_a_matching_signature_is_accepted(presented: str) -> None:
    assert signature_matches(APP_KEY, APP_SECRET, BODY, presented)


def test_upper_case_hex_is_refused() -> None:
    """The contract: the header must *equal* the lower-case hex digest; upper-case hex of the right digest is not."""
    assert not signature_matches(APP_KEY, APP_SECRET, BODY, KNOWN.upper())


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "   ",
        KNOWN[:-1],
        KNOWN + "0",
        expected_signature(APP_KEY, "wrong_secret", BODY),
        expected_signature("wrong_key", APP_SECRET, BODY),
        f"sha256={KNOWN}",
    ],
)
def test_a_missing_or_wrong_signature_is_refused(presented: str | None) -> None:
    assert not signature_matches(APP_KEY, APP_SECRET, BODY, presented)


def test_a_signature_for_another_body_is_refused() -> None:
    assert not signature_matches(APP_KEY, APP_SECRET, b'{"type":4}', KNOWN)
