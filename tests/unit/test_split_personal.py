"""Creator rows lose their personal fields (WhatsApp, e-mail) before the event is stored; the fields are kept
by row index in the event's `personal` column (CONTRACT.md "creators.crawled")."""

from __future__ import annotations

from typing import Any

import pytest

from events.catalog import split_personal


def test_personal_fields_leave_the_rows_and_are_kept_by_row_index() -> None:
    rows: list[Any] = [
        {"platformCreatorId": "1", "whatsapp": "+52 55 1234 5678", "email": "vale@example.com", "followers": "12K"},
        {"platformCreatorId": "2", "region": "MX"},
        {"platform_creator_id": "3", "email": "beto@example.com"},
    ]
    cleaned, personal = split_personal(rows)
    assert cleaned == [
        {"platformCreatorId": "1", "followers": "12K"},
        {"platformCreatorId": "2", "region": "MX"},
        {"platform_creator_id": "3"},
    ]
    assert personal == {
        "rows": {"0": {"whatsapp": "+52 55 1234 5678", "email": "vale@example.com"}, "2": {"email": "beto@example.com"}}
    }


def test_camel_and_snake_case_rows_are_split_alike() -> None:
    """The personal fields are one word, so their camelCase and snake_case spellings are the same key."""
    camel = {"platformCreatorId": "1", "platformCreatorUsername": "vale", "whatsapp": "+52 1", "email": "v@x.mx"}
    snake = {"platform_creator_id": "1", "platform_creator_username": "vale", "whatsapp": "+52 1", "email": "v@x.mx"}
    cleaned, personal = split_personal([camel, snake])
    assert cleaned == [
        {"platformCreatorId": "1", "platformCreatorUsername": "vale"},
        {"platform_creator_id": "1", "platform_creator_username": "vale"},
    ]
    assert personal == {
        "rows": {"0": {"whatsapp": "+52 1", "email": "v@x.mx"}, "1": {"whatsapp": "+52 1", "email": "v@x.mx"}}
    }


def test_rows_that_are_not_objects_pass_through_in_place() -> None:
    rows: list[Any] = ["not a row", {"platformCreatorId": "1", "whatsapp": "+52 1"}, None, 7, ["x"]]
    cleaned, personal = split_personal(rows)
    assert cleaned == ["not a row", {"platformCreatorId": "1"}, None, 7, ["x"]]
    assert personal == {"rows": {"1": {"whatsapp": "+52 1"}}}


def test_no_personal_data_gives_none_and_rows_unchanged() -> None:
    rows: list[Any] = [{"platformCreatorId": "1", "region": "MX"}, "odd", {"platformCreatorId": "2"}]
    assert split_personal(rows) == (rows, None)


def test_a_null_personal_field_is_dropped_without_a_personal_entry() -> None:
    cleaned, personal = split_personal([{"platformCreatorId": "1", "whatsapp": None, "email": None}])
    assert cleaned == [{"platformCreatorId": "1"}]
    assert personal is None


def test_an_empty_personal_value_is_still_moved_out_of_the_row() -> None:
    """An empty WhatsApp is kept aside as sent; the catalog projection reads it as unknown."""
    cleaned, personal = split_personal([{"platformCreatorId": "1", "whatsapp": ""}])
    assert cleaned == [{"platformCreatorId": "1"}]
    assert personal == {"rows": {"0": {"whatsapp": ""}}}


def test_the_callers_rows_are_not_modified() -> None:
    row = {"platformCreatorId": "1", "whatsapp": "+52 1"}
    split_personal([row])
    assert row == {"platformCreatorId": "1", "whatsapp": "+52 1"}


def test_no_rows() -> None:
    assert split_personal([]) == ([], None)


@pytest.mark.parametrize("key", ["whatsApp", "WhatsApp", "WHATSAPP", "whats_app", "eMail", "E-Mail", "e_mail"])
def test_a_personal_field_stays_out_of_the_body_however_it_is_spelled(key: str) -> None:
    rows, personal = split_personal([{"platformCreatorId": "c1", key: "+52 55 0000 0000"}])
    assert rows == [{"platformCreatorId": "c1"}]
    assert personal is not None
    assert list(personal["rows"]["0"].values()) == ["+52 55 0000 0000"]
