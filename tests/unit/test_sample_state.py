"""Folding observations into a sample's state (docs/domain.md "Ordering, stale observations and regressions")."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from events.identity import sample_id
from events.statuses import Status
from projections.sample_state import (
    FACT_FIELDS,
    Observation,
    Outcome,
    SampleState,
    apply_observation,
    merge_facts,
    moment_text,
    new_sample,
)

T0 = datetime(2026, 4, 20, 3, 0, tzinfo=UTC)
SID = sample_id("MX", "p1", "c1")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def obs(
    minutes: int,
    status: Status | None = None,
    *,
    facts: dict[str, Any] | None = None,
    content_count: int | None = None,
    cancel_reason: str | None = None,
    source: str = "collector",
) -> Observation:
    return Observation(
        sample_id=SID,
        region="MX",
        platform_product_id="p1",
        creator_key="c1",
        observed_at=at(minutes),
        source=source,
        facts=facts or {},
        status=status,
        cancel_reason=cancel_reason,
        content_count=content_count,
    )


def fold(*observations: Observation) -> Outcome:
    state: SampleState | None = None
    outcome: Outcome | None = None
    for o in observations:
        outcome = apply_observation(state, o)
        state = outcome.state
    assert outcome is not None
    return outcome


def test_first_sighting_creates_state_with_a_first_status_change() -> None:
    out = apply_observation(None, obs(0, Status.SHIPPED, facts={"product_name": "Termo"}))
    assert out.is_new is True
    assert out.stale is False
    assert out.state.sample_id == SID
    assert (out.state.region, out.state.platform_product_id, out.state.creator_key) == ("MX", "p1", "c1")
    assert out.state.status is Status.SHIPPED
    assert out.state.status_changed_at == at(0)
    assert out.state.first_seen_at == out.state.last_seen_at == at(0)
    assert out.state.product_name == "Termo"
    change = out.status_change
    assert change is not None
    assert change.from_status is None
    assert change.to_status is Status.SHIPPED
    assert change.first_sighting is True
    assert change.regression is False
    assert change.source == "collector"


def test_first_sighting_without_status_has_no_status_change() -> None:
    out = apply_observation(None, obs(0))
    assert out.is_new is True
    assert out.status_change is None
    assert out.state.status is None


def test_forward_move_is_a_plain_status_change() -> None:
    out = fold(obs(0, Status.SHIPPED), obs(10, Status.CONTENT_PENDING))
    assert out.is_new is False
    assert out.status_change is not None
    assert (out.status_change.from_status, out.status_change.to_status) == (Status.SHIPPED, Status.CONTENT_PENDING)
    assert out.status_change.first_sighting is False
    assert out.status_change.regression is False


def test_same_status_again_is_no_change() -> None:
    out = fold(obs(0, Status.SHIPPED), obs(10, Status.SHIPPED))
    assert out.status_change is None
    assert out.stale is False
    assert out.state.status_changed_at == at(0)
    assert out.state.last_seen_at == at(10)


def test_stale_observation_does_not_change_status_and_is_reported_stale() -> None:
    out = fold(obs(10, Status.COMPLETED), obs(5, Status.SHIPPED))
    assert out.stale is True
    assert out.status_change is None
    assert out.state.status is Status.COMPLETED
    assert out.state.status_changed_at == at(10)


def test_stale_observation_still_widens_the_seen_window() -> None:
    out = fold(obs(10, Status.COMPLETED), obs(5, Status.SHIPPED))
    assert out.state.first_seen_at == at(5)
    assert out.state.last_seen_at == at(10)


def test_newer_backwards_move_is_applied_and_flagged_as_regression() -> None:
    out = fold(obs(0, Status.COMPLETED), obs(10, Status.SHIPPED))
    assert out.stale is False
    assert out.state.status is Status.SHIPPED
    assert out.status_change is not None
    assert out.status_change.from_status is Status.COMPLETED
    assert out.status_change.regression is True


def test_leaving_canceled_is_a_regression_and_clears_cancel_reason() -> None:
    out = fold(obs(0, Status.CANCELED, cancel_reason="REJECT_CANCELLED"), obs(10, Status.SHIPPED))
    assert out.status_change is not None
    assert out.status_change.regression is True
    assert out.state.cancel_reason is None


def test_canceling_records_cancel_reason_and_is_not_a_regression() -> None:
    out = fold(obs(0, Status.COMPLETED), obs(10, Status.CANCELED, cancel_reason="OVERDUE_CANCELLED"))
    assert out.state.status is Status.CANCELED
    assert out.state.cancel_reason == "OVERDUE_CANCELLED"
    assert out.status_change is not None
    assert out.status_change.regression is False


def test_observation_without_status_is_not_stale_and_keeps_status() -> None:
    out = fold(obs(10, Status.SHIPPED), obs(5))
    assert out.stale is False
    assert out.status_change is None
    assert out.state.status is Status.SHIPPED


def test_missing_fact_never_overwrites_a_known_one() -> None:
    out = fold(
        obs(0, facts={"stock": 340, "post_rate": Decimal("0.67"), "product_name": "Termo"}),
        obs(10, facts={"stock": None, "post_rate": None, "product_name": None}),
    )
    assert out.state.stock == 340
    assert out.state.post_rate == Decimal("0.67")
    assert out.state.product_name == "Termo"


def test_newer_known_fact_overwrites() -> None:
    out = fold(obs(0, facts={"stock": 340}), obs(10, facts={"stock": 200}))
    assert out.state.stock == 200


def test_older_observation_fills_unknown_facts_but_does_not_overwrite_newer_ones() -> None:
    out = fold(
        obs(10, facts={"stock": 200}),
        obs(5, facts={"stock": 999, "product_name": "Termo", "is_showcase": False}),
    )
    assert out.state.stock == 200
    assert out.state.product_name == "Termo"
    assert out.state.is_showcase is False


def test_false_and_zero_are_known_facts_not_missing_ones() -> None:
    out = fold(obs(0, facts={"is_showcase": True, "stock": 5}), obs(10, facts={"is_showcase": False, "stock": 0}))
    assert out.state.is_showcase is False
    assert out.state.stock == 0


def test_unknown_fact_names_are_ignored() -> None:
    state = new_sample(obs(0))
    assert merge_facts(state, {"not_a_fact": 1, "sample_id": "x", "stock": 3}, state.last_seen_at) == {"stock": 3}
    assert "sample_id" not in FACT_FIELDS


def test_content_not_looked_at_leaves_content_unchanged() -> None:
    out = fold(obs(0, Status.COMPLETED, content_count=2), obs(10, Status.COMPLETED, content_count=None))
    assert out.state.content_count == 2
    assert out.state.content_observed_at == at(0)
    assert out.content_changed is False


def test_content_not_looked_at_never_means_no_content() -> None:
    out = apply_observation(None, obs(0, Status.COMPLETED, content_count=None))
    assert out.state.content_count is None
    assert out.content_changed is False


def test_first_look_at_content_is_a_change_even_when_empty() -> None:
    out = apply_observation(None, obs(0, Status.COMPLETED, content_count=0))
    assert out.state.content_count == 0
    assert out.state.content_observed_at == at(0)
    assert out.content_changed is True


def test_content_changed_is_reported_when_the_count_changes() -> None:
    out = fold(obs(0, content_count=0), obs(10, content_count=1))
    assert out.content_changed is True
    assert out.state.content_count == 1
    assert out.state.content_observed_at == at(10)


def test_same_content_count_is_not_a_change() -> None:
    out = fold(obs(0, content_count=1), obs(10, content_count=1))
    assert out.content_changed is False
    assert out.state.content_observed_at == at(10)


def test_older_content_look_does_not_overwrite_a_newer_one() -> None:
    out = fold(obs(10, content_count=2), obs(5, content_count=0))
    assert out.state.content_count == 2
    assert out.content_changed is False


def test_fingerprint_ignores_seen_times_but_not_facts() -> None:
    state = apply_observation(None, obs(0, Status.SHIPPED, facts={"stock": 1})).state
    seen_later = replace(state, first_seen_at=at(-5), last_seen_at=at(99))
    other_stock = replace(state, stock=2)
    assert seen_later.fingerprint() == state.fingerprint()
    assert other_stock.fingerprint() != state.fingerprint()


def test_fingerprint_is_the_stored_columns_formula() -> None:
    """`projections.samples.fingerprint` is compared across rows written by every version: the
    literal was computed by the version that first stored it, so a change of formula fails here."""
    t = datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)
    state = SampleState(
        sample_id="79e9539a-f194-57d0-a0bd-07d958aed6f6", region="MX", platform_product_id="1729487365012345678",
        creator_key="7494011122233344455", first_seen_at=t, last_seen_at=t, platform_creator_id="7494011122233344455",
        product_name="Set de brochas", stock=340, post_rate=Decimal("0.67"), is_showcase=True, status=Status.SHIPPED,
        status_changed_at=t, status_observed_at=t, status_source="collector", content_count=1, content_observed_at=t,
    )  # fmt: skip
    assert state.fingerprint() == "bc6ad9dc7bf060914d86ab083d6a10a4"


def test_a_moments_text_is_its_str_in_its_own_zone() -> None:
    utc = datetime(2026, 4, 20, 3, 15, 42, 5, tzinfo=UTC)
    same_instant = utc.astimezone(timezone(timedelta(hours=2)))
    assert [moment_text(m) for m in (utc, same_instant, utc)] == [str(utc), str(same_instant), str(utc)]
    assert moment_text(same_instant) == "2026-04-20 05:15:42.000005+02:00"


class _Moment(datetime):
    """A datetime subclass with a str() of its own (pandas' Timestamp is one)."""

    def __str__(self) -> str:
        return "moment " + self.isoformat()


def test_a_moments_text_is_its_own_types_str() -> None:
    plain = datetime(2026, 4, 20, 3, 15, 42, tzinfo=UTC)
    subclassed = _Moment(2026, 4, 20, 3, 15, 42, tzinfo=UTC)
    assert [moment_text(plain), moment_text(subclassed)] == [str(plain), str(subclassed)]


def test_a_collector_re_reading_every_fact_keeps_no_fact_times() -> None:
    facts = {"product_name": "Crema 50ml", "stock": 3}
    state = fold(obs(0, facts=facts), obs(10, facts=facts), obs(20, facts={**facts, "stock": 2})).state
    assert (state.stock, state.fact_observed_at) == (2, {})


def test_a_newer_observation_without_a_fact_pins_when_that_fact_was_observed() -> None:
    state = fold(obs(0, facts={"product_name": "Crema 50ml", "stock": 3}), obs(10, facts={"stock": 2})).state
    assert state.fact_observed_at == {"product_name": T0}
    # An observation from between the two knows a newer name than the one kept, and an older stock.
    between = apply_observation(state, obs(5, facts={"product_name": "Termo 1L", "stock": 9})).state
    assert (between.product_name, between.stock) == ("Termo 1L", 2)
    assert between.fact_observed_at == {"product_name": at(5)}
