"""Events about creators and products: catalog crawls and operators' messaging opt-outs."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from events.model import InboundEvent, IsoDatetime, id_as_text, registered


class CatalogBatchRecorded(InboundEvent):
    """A catalog crawl; rows are read one by one by the catalog projection."""

    kind: ClassVar[str]  # the `kind` column of projections.catalog_batches

    source: str = Field(min_length=1)
    operator_id: str | None = None
    rows: list[Any] = Field(min_length=1)


@registered
class CreatorBatchRecorded(CatalogBatchRecorded):
    """`creators.crawled`. WhatsApp numbers and e-mails are not in the data: they are kept in the
    event's `personal` column, which analysts cannot read."""

    type_name = "creator.crawl_batch_recorded"
    kind = "creators"


@registered
class ProductBatchRecorded(CatalogBatchRecorded):
    """`products.crawled`."""

    type_name = "product.crawl_batch_recorded"
    kind = "products"


@registered
class CreatorMessagingChanged(InboundEvent):
    """`creator.messaging`: an operator opted a creator out of chatbot messages, or back in."""

    type_name = "creator.messaging_changed"

    platform_creator_id: str = Field(min_length=1)
    opted_out: bool
    reason: str | None = None
    at: IsoDatetime

    @field_validator("platform_creator_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return id_as_text(value)
