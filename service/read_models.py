"""The read models the service keeps up to date: one list for the service and the operator tools alike."""

from __future__ import annotations

from projections.catalog import CatalogProjection
from projections.chatbot import ChatbotProjection
from projections.chatbot_rules import ChatbotPolicy
from projections.samples import SamplesProjection
from service.runner import Projection
from service.settings import Settings


def all_projections(settings: Settings) -> list[Projection]:
    policy = ChatbotPolicy(regions=settings.regions)
    return [SamplesProjection(), CatalogProjection(), ChatbotProjection(policy)]
