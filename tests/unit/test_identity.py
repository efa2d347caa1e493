"""Sample identity (docs/domain.md "Sample identity"; docs/contract.md "Sample id")."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.identity import creator_key, sample_id, uuid5, uuid5_text

CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def contract_sample_id(region: str, product: str, creator: str) -> str:
    """The formula other services use, written out independently of the code under test."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sample:" + region.upper() + ":" + product + ":" + creator))


# Hand-computed once with `uuid.uuid5(uuid.NAMESPACE_URL, "sample:MX:<product>:<creatorkey>")` in a shell;
# pasted as literals so a change to the formula (or to the key normalisation) fails here.
@pytest.mark.parametrize(
    ("region", "product", "creator_id", "username", "expected"),
    [
        ("MX", "1729487365012345678", "7494011122233344455", None, "79e9539a-f194-57d0-a0bd-07d958aed6f6"),
        ("mx", "1729487365012345678", "7494011122233344455", None, "79e9539a-f194-57d0-a0bd-07d958aed6f6"),
        ("Mx", "p1", "c1", None, "dbd582d7-5366-549d-ae7c-8128eeeeaba9"),
        ("MX", "p1", None, "@Studio.Ana", "ddec58cc-e7fb-5dde-8ca5-ed82066c5b11"),
        ("mx", "p1", None, "studio.ana", "ddec58cc-e7fb-5dde-8ca5-ed82066c5b11"),
        ("MX", "1729700000000000011", None, "  @Marisol.Vlogs  ", "5b3d3a12-5466-5633-b184-35e6d1f84111"),
        ("MX", "1729700000000000011", "", "MARISOL.VLOGS", "5b3d3a12-5466-5633-b184-35e6d1f84111"),
    ],
)
def test_sample_id_known_values_are_stable_across_machines_and_rebuilds(
    region: str, product: str, creator_id: str | None, username: str | None, expected: str
) -> None:
    key = creator_key(creator_id, username)
    assert key is not None
    assert sample_id(region, product, key) == expected


def test_sample_id_is_lower_case_canonical_uuid5_text() -> None:
    got = sample_id("MX", "1729487365012345678", "7494011122233344455")
    assert CANONICAL_UUID.match(got)
    assert got == got.lower()
    assert str(uuid.UUID(got)) == got
    assert uuid.UUID(got).version == 5


@pytest.mark.parametrize("region", ["mx", "Mx", "MX"])
def test_sample_id_upper_cases_the_region(region: str) -> None:
    assert sample_id(region, "p1", "c1") == contract_sample_id("MX", "p1", "c1")
    assert sample_id(region, "p1", "c1") == sample_id("MX", "p1", "c1")


def test_different_creators_of_one_product_are_different_samples() -> None:
    assert sample_id("MX", "p1", "creator-a") != sample_id("MX", "p1", "creator-b")


def test_different_products_or_regions_are_different_samples() -> None:
    base = sample_id("MX", "p1", "c1")
    assert sample_id("MX", "p2", "c1") != base
    assert sample_id("FR", "p1", "c1") != base


def test_creator_key_is_the_platform_creator_id_when_present() -> None:
    assert creator_key("7494011122233344455", "lupita.makeup") == "7494011122233344455"


def test_creator_key_keeps_the_id_exactly_as_given() -> None:
    assert creator_key("AbC123", None) == "AbC123"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("lupita.makeup", "lupita.makeup"),
        ("@studio.ana", "studio.ana"),
        ("@Studio.Ana", "studio.ana"),
        ("Studio.Ana", "studio.ana"),
        ("  @Studio.Ana  ", "studio.ana"),
    ],
)
def test_creator_key_falls_back_to_username_lower_cased_without_at(username: str, expected: str) -> None:
    assert creator_key(None, username) == expected


def test_creator_key_empty_platform_id_falls_back_to_username() -> None:
    assert creator_key("", "@Marisol.Vlogs") == "marisol.vlogs"


@pytest.mark.parametrize(("creator_id", "username"), [(None, None), ("", ""), (None, "@"), (None, "   "), ("", "@")])
def test_creator_key_is_none_when_there_is_no_creator(creator_id: str | None, username: str | None) -> None:
    assert creator_key(creator_id, username) is None


def test_username_spellings_of_one_creator_give_one_sample() -> None:
    ids = {sample_id("MX", "p1", creator_key(None, u) or "") for u in ("@Studio.Ana", "studio.ana", "STUDIO.ANA")}
    assert len(ids) == 1
    assert ids == {contract_sample_id("MX", "p1", "studio.ana")}


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_creator_id_gives_way_to_the_handle(blank: str) -> None:
    assert creator_key(blank, "@Studio.Ana") == "studio.ana"
    assert creator_key(f" 7492223334445556667{blank}", None) == "7492223334445556667"


@given(namespace=st.uuids(), name=st.text())
def test_the_fast_name_based_ids_are_the_standard_librarys(namespace: uuid.UUID, name: str) -> None:
    expected = uuid.uuid5(namespace, name)
    assert uuid5(namespace, name) == expected
    assert uuid5_text(namespace, name) == str(expected)
    assert CANONICAL_UUID.match(uuid5_text(namespace, name))
