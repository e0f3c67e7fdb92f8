"""How the API speaks for an API key on the broker (design invariant 6, HTTP writes).

The API publishes an HTTP agent's commands with its own broker user as `user_id` (RabbitMQ
validates it) and names the key's principal in the `PRINCIPAL_HEADER` header. The worker takes
that header only from a gateway user (`AGENTROSTER_GATEWAY_USERS`, by default the registry's own
broker user); from anyone else a command carrying it is dead-lettered as `forbidden`. The
identity the command gets is `IDENTITY_PREFIX + principal` (an empty header: no identity), a
namespace no broker user is in by accident, so a key can never speak for a broker user nor a
broker user for a key.
"""

from __future__ import annotations

#: The header naming the API key principal a gateway command speaks for.
PRINCIPAL_HEADER = "x-agentroster-principal"
#: Identities of API key principals start with this; broker users' identities are their names.
IDENTITY_PREFIX = "key:"


def key_identity(principal: str) -> str:
    """The identity of an API key principal ("" stays "": no identity)."""
    return IDENTITY_PREFIX + principal if principal else ""
