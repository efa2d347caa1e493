"""Every chatbot text in one place (docs/domain.md "Messages"): Spanish (Mexico), short, friendly.

Each text ends with the product block. Placeholders are named; `{product_block}` may be empty, and
the trailing blank lines it would leave are trimmed. No text carries a phone number: creators share
theirs by replying in the chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.chatbot_events import Scenario

PRODUCT_ID_LINE = "product ID: {platform_product_id}"

SHIPPED_TEXT = "¡Hola! 🎉 Tus muestras ya van en camino. ¡Esperamos que te encanten!\n\n{product_block}"

SHIPPED_NO_WHATSAPP_TEXT = (
    "¡Hola! 🎉 Tus muestras ya van en camino. ¡Esperamos que te encanten!\n\n"
    "Te invitamos a unirte a nuestra comunidad de creadores: ahí compartimos nuevas oportunidades de "
    "colaboración, briefs de campaña y tips para vender más. 🙌\n"
    "¿Nos compartes tu número de WhatsApp respondiendo a este mensaje? Así te agregamos.\n\n"
    "{product_block}"
)

CONTENT_PENDING_TEXT = (
    "¡Hola! 👋 ¿Ya recibiste tus muestras?\n\n"
    "En la Guía para Creadores encuentras todo lo que necesitas para preparar tu contenido. "
    "Abre en tu celular el enlace del siguiente mensaje. 📱\n\n"
    "{product_block}"
)

NO_CONTENT_TEXT = (
    "¡Hola! 😊 Vimos que tu contenido aún no está publicado y la fecha acordada ya pasó.\n"
    "¿Nos cuentas cuándo vas a subir tu video?\n\n"
    "Publicar a tiempo nos ayuda a seguir colaborando contigo en próximas campañas. "
    "¡Muchas gracias! 💛\n\n"
    "{product_block}"
)


@dataclass(frozen=True)
class MessageContext:
    sample_id: str
    platform_product_id: str | None
    product_name: str | None
    creator_has_whatsapp: bool
    link_template: str  # e.g. "https://creator.infound.ai/samples/{sample_id}"


def product_block(product_name: str | None, platform_product_id: str | None) -> str:
    """The product's name, then its id on a line of its own; an unknown part is left out."""
    lines = []
    if product_name and product_name.strip():
        lines.append(product_name.strip())
    if platform_product_id and platform_product_id.strip():
        lines.append(PRODUCT_ID_LINE.format(platform_product_id=platform_product_id.strip()))
    return "\n".join(lines)


def build_messages(scenario: str, ctx: MessageContext) -> list[dict[str, str]]:
    """The messages of one task, in the order the worker sends them. Unknown scenario: ValueError."""
    match Scenario(scenario):
        case Scenario.SHIPPED:
            template = SHIPPED_TEXT if ctx.creator_has_whatsapp else SHIPPED_NO_WHATSAPP_TEXT
            return [_text(template, ctx)]
        case Scenario.CONTENT_PENDING:
            link = ctx.link_template.format(sample_id=ctx.sample_id)
            return [_text(CONTENT_PENDING_TEXT, ctx), {"type": "link", "content": link}]
        case Scenario.NO_CONTENT:
            return [_text(NO_CONTENT_TEXT, ctx)]


def _text(template: str, ctx: MessageContext) -> dict[str, str]:
    block = product_block(ctx.product_name, ctx.platform_product_id)
    return {"type": "text", "content": template.format(product_block=block).rstrip()}
