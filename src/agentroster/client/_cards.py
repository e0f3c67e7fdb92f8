"""Accept a card as a dict, a pydantic model, or a protobuf message (a2a-sdk 1.x)."""

from __future__ import annotations

from typing import Any


def card_to_dict(card: Any) -> dict[str, Any]:
    """The card as the JSON object it is on the wire, camelCase as the A2A spec writes it."""
    if isinstance(card, dict):
        return card
    if hasattr(card, "model_dump"):  # pydantic (a2a-sdk 0.3 types, our own models)
        dumped = card.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert isinstance(dumped, dict)
        return dumped
    if hasattr(card, "DESCRIPTOR") and hasattr(card, "ListFields"):  # protobuf (a2a-sdk 1.x)
        from google.protobuf.json_format import MessageToDict

        converted: dict[str, Any] = MessageToDict(card)
        return converted
    raise TypeError(
        f"a card must be a dict, a pydantic model or a protobuf message, not {type(card)}"
    )
