"""Secondary-index terms: how an agent's view and a discovery filter name the same thing.

The worker indexes an agent under these terms; `GET /v1/agents` filters by them. Tags,
protocols and transports match case-insensitively, skill ids and labels exactly. Terms travel
newline-separated to the apply script; the contracts refuse control characters in everything a
term is made of, so a term is never changed to fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol


class _Skill(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class _Endpoint(Protocol):
    @property
    def protocol(self) -> str: ...
    @property
    def transport(self) -> str: ...


class _Indexable(Protocol):
    """What terms and search text are made of: the contract's `AgentView`, and the client's
    `AgentInfo` read back from the API (so a Roster indexes exactly as the worker does)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def card_format(self) -> str: ...
    @property
    def skills(self) -> Sequence[_Skill]: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def endpoints(self) -> Sequence[_Endpoint]: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


#: What a text query `q` reads per request at most before it returns what it found, with a
#: cursor: each search text checked costs 1, plus 1 per full KiB of it. It bounds the Redis time
#: of one request (bench/README.md, Limits), so a flood of `q` queries cannot starve commands.
TEXT_BUDGET = 1_000


def skill_term(skill_id: str) -> str:
    """Agents with this skill id."""
    return f"skill:{skill_id}"


def tag_term(tag: str) -> str:
    """Agents with a skill tagged so (or an ACP manifest with this tag or domain)."""
    return f"tag:{tag.lower()}"


def protocol_term(protocol: str) -> str:
    """Agents with an endpoint speaking this protocol (a2a, mcp, ...), or a card of it."""
    return f"protocol:{protocol.lower()}"


def format_protocol(card_format: str) -> str | None:
    """The protocol a card format belongs to (`mcp` for `mcp/server`, `acp` for `acp/manifest`,
    `a2a` for A2A cards), None for a generic card: an MCP server with no network endpoint is
    still found by `protocol=mcp`."""
    protocol, slash, _ = card_format.partition("/")
    return protocol if slash and protocol else None


def transport_term(transport: str) -> str:
    """Agents with an endpoint on this transport (http, amqp, ...)."""
    return f"transport:{transport.lower()}"


def label_term(key: str, value: str) -> str:
    """Agents labelled `key=value`."""
    return f"label:{key}={value}"


def verified_term(verified: bool) -> str:
    """Agents whose well-known card was checked: `verified:true` matched, `verified:false` did
    not (an agent never checked, or whose card changed since, has neither)."""
    return f"verified:{'true' if verified else 'false'}"


#: Every verification term (an agent carries at most one of them).
VERIFIED_TERMS = (verified_term(True), verified_term(False))


def signature_term(signature: str) -> str:
    """Agents whose card's signature is `valid`, `invalid` or `unsigned` (a signed card not
    checked yet, or whose card changed since, has none)."""
    return f"signature:{signature}"


#: Every signature term (an agent carries at most one of them).
SIGNATURE_TERMS = tuple(signature_term(s) for s in ("valid", "invalid", "unsigned"))


def index_terms(view: _Indexable) -> list[str]:
    """Every term an agent is indexed under."""
    terms = {skill_term(skill.id) for skill in view.skills}
    terms |= {tag_term(tag) for tag in view.tags}
    terms |= {protocol_term(e.protocol) for e in view.endpoints}
    if protocol := format_protocol(view.card_format):
        terms.add(protocol_term(protocol))
    terms |= {transport_term(e.transport) for e in view.endpoints}
    terms |= {label_term(key, value) for key, value in view.labels.items()}
    return sorted(terms)


def search_text(view: _Indexable) -> str:
    """What the text filter `q` searches, lower-cased: name, description, skill ids and names."""
    parts = [view.name, view.description]
    for skill in view.skills:
        parts += (skill.id, skill.name)
    return "\n".join(parts).lower()


@dataclass(frozen=True, slots=True)
class Filters:
    """What `GET /v1/agents` filters on; every given filter must match."""

    skills: tuple[str, ...] = ()
    tag: str | None = None
    protocol: str | None = None
    transport: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    q: str | None = None
    verified: bool | None = None
    signature: str | None = None

    def terms(self) -> list[str]:
        """The index terms an agent must have (spelled as the worker indexes them)."""
        terms = [skill_term(skill) for skill in self.skills]
        if self.tag:
            terms.append(tag_term(self.tag))
        if self.protocol:
            terms.append(protocol_term(self.protocol))
        if self.transport:
            terms.append(transport_term(self.transport))
        terms += [label_term(key, value) for key, value in self.labels]
        if self.verified is not None:
            terms.append(verified_term(self.verified))
        if self.signature is not None:
            terms.append(signature_term(self.signature))
        return terms

    def text(self) -> str:
        """The lower-cased text `q` looks for ('' for none)."""
        return (self.q or "").lower()

    def matches(self, terms: AbstractSet[str], text: str) -> bool:
        """Whether an agent indexed under `terms`, with search text `text` (`search_text`),
        passes every filter: the same answer `GET /v1/agents` gives from Redis."""
        if not all(term in terms for term in self.terms()):
            return False
        q = self.text()
        return not q or q in text
