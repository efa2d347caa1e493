"""The chatbot texts (docs/domain.md "Messages")."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from projections.chatbot_messages import MessageContext, build_messages, product_block

CTX = MessageContext(
    sample_id="0f3c2a9e-1111-5222-8333-444455556666",
    platform_product_id="1729700000000000011",
    product_name="Crema hidratante 50ml",
    creator_has_whatsapp=True,
    link_template="https://creator.infound.ai/samples/{sample_id}",
)
BLOCK = "Crema hidratante 50ml\nproduct ID: 1729700000000000011"
SCENARIOS = ("shipped", "content_pending", "no_content")


def texts(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["type"] == "text"]


@pytest.mark.parametrize(
    ("name", "product_id", "expected"),
    [
        ("Crema hidratante 50ml", "1729700000000000011", BLOCK),
        ("Crema hidratante 50ml", None, "Crema hidratante 50ml"),
        (None, "1729700000000000011", "product ID: 1729700000000000011"),
        (None, None, ""),
        ("  ", "", ""),
    ],
)
def test_product_block_leaves_out_unknown_parts(name: str | None, product_id: str | None, expected: str) -> None:
    assert product_block(name, product_id) == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("has_whatsapp", [True, False])
def test_every_text_ends_with_the_product_block(scenario: str, has_whatsapp: bool) -> None:
    messages = build_messages(scenario, replace(CTX, creator_has_whatsapp=has_whatsapp))
    assert texts(messages)
    assert all(text.endswith("\n\n" + BLOCK) for text in texts(messages))


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("has_whatsapp", [True, False])
def test_unknown_product_leaves_no_stray_blank_lines(scenario: str, has_whatsapp: bool) -> None:
    ctx = replace(CTX, product_name=None, platform_product_id=None, creator_has_whatsapp=has_whatsapp)
    for message in build_messages(scenario, ctx):
        assert message["content"] == message["content"].strip()
        assert "product ID" not in message["content"]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("has_whatsapp", [True, False])
def test_every_message_has_a_type_and_content_and_no_phone_number(scenario: str, has_whatsapp: bool) -> None:
    for message in build_messages(scenario, replace(CTX, creator_has_whatsapp=has_whatsapp)):
        assert message["type"] in ("text", "link")
        assert message["content"].strip()
        without_ids = message["content"].replace(CTX.platform_product_id or "", "").replace(CTX.sample_id, "")
        assert not re.search(r"\+?\d[\d\s-]{7,}\d", without_ids)


def test_shipped_with_and_without_whatsapp_differ() -> None:
    with_whatsapp = build_messages("shipped", CTX)
    without_whatsapp = build_messages("shipped", replace(CTX, creator_has_whatsapp=False))
    assert with_whatsapp != without_whatsapp
    assert "WhatsApp" not in with_whatsapp[0]["content"]
    assert "WhatsApp" in without_whatsapp[0]["content"]
    assert "comunidad" in without_whatsapp[0]["content"]


def test_content_pending_is_a_text_then_a_link_to_the_sample() -> None:
    messages = build_messages("content_pending", CTX)
    assert [m["type"] for m in messages] == ["text", "link"]
    assert messages[1]["content"] == f"https://creator.infound.ai/samples/{CTX.sample_id}"
    assert "celular" in messages[0]["content"]


def test_no_content_is_one_text_ending_with_the_product_block() -> None:
    messages = build_messages("no_content", CTX)
    assert len(messages) == 1
    assert messages[0]["type"] == "text"
    assert messages[0]["content"].endswith(BLOCK)
    assert "video" in messages[0]["content"]


def test_braces_in_a_product_name_are_kept_as_written() -> None:
    messages = build_messages("shipped", replace(CTX, product_name="Set {rosa}"))
    assert messages[0]["content"].endswith("Set {rosa}\nproduct ID: 1729700000000000011")


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="missing_ad_code"):
        build_messages("missing_ad_code", CTX)
