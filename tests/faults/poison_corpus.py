"""Poison messages, each with the outcome docs/contract.md gives it: a dead-letter reason, or recorded.

Most carry a personal value (`PERSONAL`) somewhere in the body, often in the very field that is wrong:
a dead letter's `x-ledger-detail` must never echo it. Decisions the contract leaves open are noted at
the message (`note`); the test asserts them all the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from events.webhooks import expected_signature
from tests.faults.publisher import APP_KEY, APP_SECRET, Message

RECORDED = "recorded"
PERSONAL = ("+52 55 1234 9999", "ana.perez@example.com")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Poison:
    kind: str
    message: Message
    expect: str  # a dead-letter reason of the contract, or RECORDED
    content_type: str = "application/json"
    note: str = ""


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _report(**changes: Any) -> dict[str, Any]:
    """A valid status report with a personal note; `changes` set keys, None removes one."""
    body: dict[str, Any] = {
        "region": "MX", "platformProductId": "1729600000000000001", "platformCreatorId": "7492200000000000001",
        "status": "Shipped", "observedAt": "2026-05-04T15:00:00Z", "source": "seller_monitor",
        "contactNote": f"whatsapp {PERSONAL[0]}",
    }  # fmt: skip
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def _report_with(raw_tail: bytes) -> bytes:
    """A status report whose last key is `raw_tail`, spliced in as bytes (for what json.dumps cannot write)."""
    return _dump(_report())[:-1] + b', "extra": ' + raw_tail + b"}"


def _row(n: int) -> dict[str, Any]:
    return {"platformProductId": f"17297{n:014d}", "platformCreatorId": f"74923{n:014d}", "status": "Shipped"}


def _webhook(notification: str, **data: Any) -> bytes:
    return json.dumps({
        "type": 56, "tts_notification_id": notification, "shop_id": "7495123456789012345", "timestamp": 1777906800,
        "data": {"new_status": "SHIPPED", "creator": {"creator_open_id": "7492200000000000001"},
                 "product": {"id": "1729600000000000001"}, "buyer_email": PERSONAL[1], **data},
    }, separators=(",", ":")).encode()  # fmt: skip


def _signed(raw: bytes) -> dict[str, str]:
    return {"authorization": expected_signature(APP_KEY, APP_SECRET, raw)}


def poison_corpus() -> list[Poison]:
    state, ingest, hooks = "state", "ingest", "webhooks"
    report, result, messaging = "sample.status_reported", "chatbot.result", "creator.messaging"
    at = "2026-05-04T16:00:00Z"
    deep = b"[" * 10_000 + b"]" * 10_000
    unsigned_17mib = _webhook("8000000000000000001", padding="x" * (17 * MIB))
    signed_nan = _webhook("8000000000000000002")[:-2] + b',"score":NaN}}'
    signed_deep = _webhook("8000000000000000003")[:-2] + b',"tree":' + deep + b"}}"
    signed_utf16 = _webhook("8000000000000000004").decode().encode("utf-16-le")
    signed_numbers = _webhook("8000000000000000005")[:-2] + b',"huge":1e400,"long":' + b"7" * 5000 + b"}}"
    webhook_ok = _webhook("8000000000000000006")
    webhook_unknown_status = _webhook("8000000000000000007", new_status="TELEPORTED")
    far_timestamp = b'"timestamp":' + b"9" * 20
    webhook_far_timestamp = _webhook("8000000000000000008").replace(b'"timestamp":1777906800', far_timestamp)
    webhook_huge_type = _webhook("8000000000000000009").replace(b'"type":56', b'"type":1099511627776')
    webhook_untyped = _webhook("8000000000000000010").replace(b'"type":56,', b"")
    webhook_untyped_2 = _webhook("8000000000000000011").replace(b'"type":56,', b"")
    signed_array = b'[{"type":56}]'

    # fmt: off
    table: list[tuple[str, str, str, bytes, str, dict[str, str], str]] = [
        # kind, exchange, routing key, body, expected outcome, headers, note
        ("not_json", ingest, "samples.crawled", f"hola {PERSONAL[0]}".encode(), "invalid_json", {}, ""),
        ("truncated_json", state, report, _dump(_report())[:60], "invalid_json", {}, ""),
        ("invalid_utf8", state, report, _dump(_report())[:-1] + b', "x": "\xff\xfe"}',
         "invalid_json", {}, ""),
        ("utf16_body", state, report, _dump(_report()).decode().encode("utf-16"), "invalid_json", {},
         "json.loads(bytes) would detect UTF-16; the contract says UTF-8"),
        ("nul_byte_raw", state, report, _dump(_report(source="mon")).replace(b'"mon"', b'"mo\x00n"'),
         "invalid_json", {}, "JSON forbids a raw control character in a string"),
        ("nul_escaped", state, report, _dump(_report(source="mo\u0000n")), "handler_error", {},
         "valid JSON that PostgreSQL cannot store (jsonb refuses \\u0000): the contract's 'anything else'"),
        ("empty_body", state, messaging, b"", "invalid_json", {}, ""),
        ("nan", state, report, _report_with(b"NaN"), "invalid_json", {},
         "NaN is not JSON (RFC 8259); Python accepts it and jsonb would refuse it"),
        ("infinity", state, result,
         _dump({"taskId": "poison-task", "outcome": "sent", "at": at})[:-1] + b', "x": -Infinity}', "invalid_json",
         {}, "as NaN"),
        ("huge_float", state, report, _report_with(b"1e400"), "invalid_json", {},
         "overflows a double (inf); RFC 8259 lets a parser limit numbers; jsonb would refuse inf"),
        ("huge_integer", state, report, _report_with(b"9" * 5000), "invalid_json", {},
         "over Python's 4300-digit int limit"),
        ("deep_nesting", ingest, "samples.crawled",
         _dump({"source": "c", "rows": [_row(1)]})[:-1] + b', "options": {"tree": ' + deep + b"}}", "invalid_json",
         {}, "10,000 levels: over the parser's nesting limit"),
        ("duplicate_keys", state, report, _dump(_report(status="To review"))[:-1] + b', "status": "Shipped"}',
         RECORDED, {}, "still a JSON object; the last value wins"),
        ("json_array", state, report, _dump([_report()]), "invalid_schema", {}, ""),
        ("json_string", state, result, b'"sent"', "invalid_schema", {}, ""),
        ("body_17mib", ingest, "samples.crawled", _dump({"source": "c", "rows": [_row(2)], "pad": "x" * (17 * MIB)}),
         "too_large", {}, ""),
        ("rows_5001", ingest, "samples.crawled", _dump({"source": "c", "rows": [_row(n) for n in range(5001)]}),
         "too_large", {}, ""),
        ("rows_5001_without_source", ingest, "products.crawled",
         _dump({"rows": [{"platformProductId": str(n)} for n in range(5001)]}), "too_large", {},
         "row count is checked before the schema"),
        ("rows_5000", ingest, "samples.crawled",
         _dump({"source": "c", "rows": [{"platformProductId": str(n), "note": PERSONAL[0]} for n in range(5000)]}),
         RECORDED, {}, "the limit itself; every row is rejected alone (no creator)"),
        ("rows_string", ingest, "samples.crawled", _dump({"source": "c", "rows": PERSONAL[0]}), "invalid_schema", {},
         ""),
        ("rows_empty", ingest, "products.crawled", _dump({"source": "c", "rows": []}), "invalid_schema", {}, ""),
        ("source_blank", ingest, "creators.crawled",
         _dump({"source": "  ", "rows": [{"platformCreatorId": "1", "whatsapp": PERSONAL[0], "email": PERSONAL[1]}]}),
         "invalid_schema", {}, ""),
        *[(f"report_without_{key}", state, report, _dump(_report(**{key: None})), "invalid_schema", {}, "")
          for key in ("region", "platformProductId", "status", "observedAt", "source")],
        ("report_without_creator", state, report, _dump(_report(platformCreatorId=None)), "invalid_schema", {}, ""),
        ("report_creator_only_at", state, report, _dump(_report(platformCreatorId=None, platformCreatorUsername="@")),
         "invalid_schema", {}, "'@' is no username once trimmed: a status report without any creator"),
        ("report_region_blank", state, report, _dump(_report(region="  ")), "invalid_schema", {}, "blank required key"),
        ("report_observed_at_number", state, report, _dump(_report(observedAt=1777906800)), "invalid_schema", {},
         "times are ISO 8601 text: a number is a wrong type"),
        ("report_observed_at_digits", state, report, _dump(_report(observedAt="1777906800")), "invalid_schema", {},
         "digits are not an ISO 8601 time"),
        ("report_observed_at_out_of_range", state, report, _dump(_report(observedAt="0001-01-01T00:00:00+14:00")),
         "invalid_schema", {}, "no UTC time exists for it"),
        ("report_observed_at_year_9999", state, report, _dump(_report(observedAt="9999-12-31T23:59:59Z")), RECORDED,
         {}, "absurd but a valid ISO 8601 time; the projections cope"),
        ("result_at_year_1", state, result, _dump({"taskId": "t", "outcome": "sent", "at": "0001-01-01T00:00:00Z"}),
         RECORDED, {}, "as above"),
        ("report_status_bool", state, report, _dump(_report(status=True)), "invalid_schema", {},
         "neither a status text nor a code 1-6"),
        ("report_region_number", state, report, _dump(_report(region=52)), "invalid_schema", {}, ""),
        ("report_status_unknown_text", state, report, _dump(_report(status=f"llamar al {PERSONAL[0]}")),
         "invalid_schema", {}, "the detail must not echo the value"),
        ("report_status_code_7", state, report, _dump(_report(status=7)), "invalid_schema", {}, ""),
        ("report_unknown_keys", state, report,
         _dump(_report(surprise={"nested": [1, {"deeper": True}]}, platform_creator_username="creador")), RECORDED,
         {}, "unknown keys are kept"),
        ("result_outcome_unknown", state, result, _dump({"taskId": "t", "outcome": PERSONAL[1], "at": at}),
         "invalid_schema", {}, ""),
        ("result_at_number", state, result, _dump({"taskId": "t", "outcome": "sent", "at": 1777906800}),
         "invalid_schema", {}, ""),
        ("messaging_opted_out_text", state, messaging,
         _dump({"platformCreatorId": "7492200000000000001", "optedOut": "yes", "reason": PERSONAL[0], "at": at}),
         "invalid_schema", {}, "true or false, not a string"),
        ("webhook_17mib_unsigned", hooks, "tiktok.shop.56", unsigned_17mib, "too_large", {}, "size before signature"),
        ("webhook_bad_signature", hooks, "tiktok.shop.56", webhook_ok, "invalid_signature", {"authorization": "0" * 64},
         ""),
        ("webhook_missing_signature", hooks, "tiktok.shop.56", webhook_ok, "invalid_signature", {}, ""),
        ("webhook_upper_case_signature", hooks, "tiktok.shop.56", webhook_ok, "invalid_signature",
         {"authorization": _signed(webhook_ok)["authorization"].upper()}, "the contract says lower-case hex"),
        ("webhook_empty_signed", hooks, "tiktok.shop.56", b"", "invalid_json", _signed(b""), ""),
        ("webhook_nan_signed", hooks, "tiktok.shop.56", signed_nan, "invalid_json", _signed(signed_nan), ""),
        ("webhook_deep_signed", hooks, "tiktok.shop.56", signed_deep, "invalid_json", _signed(signed_deep), ""),
        ("webhook_utf16_signed", hooks, "tiktok.shop.56", signed_utf16, "invalid_json", _signed(signed_utf16), ""),
        ("webhook_array_signed", hooks, "tiktok.shop.56", signed_array, "invalid_schema", _signed(signed_array), ""),
        ("webhook_huge_numbers_signed", hooks, "tiktok.shop.56", signed_numbers, RECORDED, _signed(signed_numbers),
         "webhook numbers are kept as their exact text"),
        ("webhook_unknown_status", hooks, "tiktok.shop.56", webhook_unknown_status, RECORDED,
         _signed(webhook_unknown_status), "recorded; the projection marks it unknown_status"),
        ("webhook_far_timestamp", hooks, "tiktok.shop.56", webhook_far_timestamp, RECORDED,
         _signed(webhook_far_timestamp), "envelope fields are optional: an unusable timestamp is unknown"),
        ("webhook_huge_type", hooks, "tiktok.shop.56", webhook_huge_type, RECORDED, _signed(webhook_huge_type),
         "no such type: recorded, not about a sample"),
        ("webhook_huge_routing_type", hooks, "tiktok.shop.1099511627776", webhook_untyped, RECORDED,
         _signed(webhook_untyped), "the type from the routing key, as large"),
        ("webhook_superscript_routing_type", hooks, "tiktok.shop.\u00b2", webhook_untyped_2, RECORDED,
         _signed(webhook_untyped_2), "'\u00b2'.isdigit() is True, int('\u00b2') fails: no type"),
    ]
    corpus = [Poison(kind, Message(exchange, key, body, f"poison-{kind}", headers), expect, note=note)
              for kind, exchange, key, body, expect, headers, note in table]
    corpus.append(Poison("text_plain_content_type", Message(state, report, _dump(_report()), "poison-text-plain"),
                         RECORDED, content_type="text/plain", note="the content type is not checked"))
    # fmt: on
    return corpus


UNROUTABLE = Message("state", "sample.teleported", _dump(_report()), "poison-unroutable")
