"""Every Redis key of one registry, in one place.

All keys start with `{<prefix>}:`: the braces are a Redis Cluster hash tag, so every key of
one registry lives in one slot and the multi-key scripts run on a cluster too (invariant 7).
`LAYOUT` below is the one map of the data: `Keys` builds names from it, and the Lua scripts
get the same builders (`K_<NAME>`) in the prelude `store/scripts.py` generates from it, so
neither side spells a key by hand (tests/unit/test_lua_seam.py holds them to that).

    {p}:rev              string  global revision, INCR once per event
    {p}:epoch            string  registry epoch; a missing epoch means Redis lost its data
    {p}:outbox           stream  events by id "<rev>-0" (fields: rev, kind, agent, ...): those
                                 not yet confirmed by RabbitMQ, and a replay window after
    {p}:relayed          string  the last revision RabbitMQ confirmed (the relay's position)
    {p}:relay            string  lock of the one outbox relay that publishes, in order
    {p}:leases           zset    "<agent_id>|<instance_id>" -> lease deadline (ms, Redis clock)
    {p}:idle             zset    agent_id -> end of its idle period (ms)
    {p}:retain           zset    offline agent_id -> when it is deleted (ms)
    {p}:agents           zset    every known agent_id, score 0 (lexicographic paging)
    {p}:status:<s>       zset    agent_ids whose status is <s> (live, idle, offline), score 0
    {p}:ix:<term>        zset    agent_ids whose card has <term> ("skill:<id>", "tag:<tag>",
                                 "protocol:<p>", "transport:<t>", "label:<k>=<v>"), score 0
    {p}:reaper           string  Redis time (ms) of the last reaper sweep
    {p}:brake            string  the mass-expiry brake fired (held once while this lives)
    {p}:braking          string  leases the brake holds now; expires when the hold ends
    {p}:ttlmax           string  the longest lease TTL registered lately (ms): sizes recovery
    {p}:recovering       string  the recovery window after a data loss: no expiries, joins
                                 say "recovered"; expires when the window ends
    {p}:flap:<a>         string  events of agent <a> in its current flap window
    {p}:damped           zset    agent_id -> when its held-back final state is due (ms)
    {p}:agent:<a>        hash    card, digest, sdigest, view, status, owner (the identity its
                                 first registration carried, "" for none), ttl, interval,
                                 idle_ttl, first_seen, last_seen, rev, terms (its index
                                 terms, to take it out of them), text (what `q` searches),
                                 est/esd/esv/esg (status, sdigest, verified and signature
                                 last told in an event), why (reason of the last change
                                 held back by flap damping), verified (1/0: its well-known
                                 card matched; absent: not checked) and vdigest (the
                                 sdigest checked), signature (valid/invalid/unsigned;
                                 absent: a signed card not checked) and gdigest (the
                                 sdigest whose signatures were checked), births (instances
                                 that registered so far), holder and holder_born (the
                                 instance whose card this is, the newest live one, and its
                                 born; see apply.lua)
    {p}:owned:<u>        set     agent_ids owned by identity <u> (a broker user name; "" for
                                 none): the quota of agents per identity counts it
    {p}:inst:<a>         zset    live instance_id -> lease deadline (ms)
    {p}:i:<a>:<i>        hash    seq, state, first_seen, last_seen, ttl, deadline, ignored
                                 (commands ignored by seq in a row), born (its place in the
                                 agent's order of first registrations); kept while the
                                 lease lives, then one TTL more as a tombstone, so late
                                 messages stay late
    {p}:apikeys          zset    every API key id, score 0 (lexicographic paging for listing)
    {p}:apikey:<k>       hash    one API key: principal, scope, agents (JSON list of globs),
                                 created_at, description, revoked_at (absent while valid),
                                 sha256 (of its secret; the secret itself is never stored)
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter

#: Every key as `{prefix}:` + this template; `{name}` fields are the key's parameters. The
#: name is the `Keys` accessor, and in Lua `K_<NAME>` (a string, or a function of the fields).
LAYOUT: dict[str, str] = {
    "revision": "rev",
    "epoch": "epoch",
    "outbox": "outbox",
    "relayed": "relayed",
    "relay_lock": "relay",
    "leases": "leases",
    "idle": "idle",
    "retain": "retain",
    "agents": "agents",
    "reaper": "reaper",
    "brake": "brake",
    "braking": "braking",
    "ttl_max": "ttlmax",
    "recovering": "recovering",
    "damped": "damped",
    "flap": "flap:{agent_id}",
    "status": "status:{status}",
    "index": "ix:{term}",
    "agent": "agent:{agent_id}",
    "owned": "owned:{identity}",
    "instances": "inst:{agent_id}",
    "instance": "i:{agent_id}:{instance_id}",
    "api_keys": "apikeys",
    "api_key": "apikey:{key_id}",
}


def parameters(name: str) -> list[str]:
    """The parameters of key `name`, in order (none for a fixed key)."""
    return [field for _, field, _, _ in Formatter().parse(LAYOUT[name]) if field]


def lua_builders() -> str:
    """`LAYOUT` as Lua: `local K_REVISION = P .. 'rev'`, `local function K_AGENT(agent_id)
    return P .. 'agent:' .. agent_id end`; `P` is the key base the script was given."""
    lines = []
    for name, template in LAYOUT.items():
        parts = ["P"]
        for literal, field, _, _ in Formatter().parse(template):
            if literal:
                parts.append(f"'{literal}'")
            if field:
                parts.append(field)
        body = " .. ".join(parts)
        params = parameters(name)
        if params:
            lines.append(f"local function K_{name.upper()}({', '.join(params)}) return {body} end")
        else:
            lines.append(f"local K_{name.upper()} = {body}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names for one registry prefix (see `LAYOUT`)."""

    prefix: str

    @property
    def base(self) -> str:
        """The common start of every key, hash tag included: `{prefix}:`."""
        return f"{{{self.prefix}}}:"

    def named(self, name: str) -> str:
        """A fixed key by its `LAYOUT` name (how the scripts' KEYS are given by name)."""
        return self.base + LAYOUT[name]

    @property
    def revision(self) -> str:
        """Global revision counter."""
        return self.base + LAYOUT["revision"]

    @property
    def epoch(self) -> str:
        """Registry epoch, set when the keyspace is first written."""
        return self.base + LAYOUT["epoch"]

    @property
    def outbox(self) -> str:
        """Stream of events: awaiting publication, then kept for replay (`events_window`)."""
        return self.base + LAYOUT["outbox"]

    @property
    def relayed(self) -> str:
        """The last revision the relay saw confirmed."""
        return self.base + LAYOUT["relayed"]

    @property
    def relay_lock(self) -> str:
        """Lock held by the replica that relays the outbox."""
        return self.base + LAYOUT["relay_lock"]

    @property
    def leases(self) -> str:
        """Sorted set of every live lease by deadline: the source of expiries."""
        return self.base + LAYOUT["leases"]

    @property
    def idle(self) -> str:
        """Sorted set of idle agents by the end of their idle period."""
        return self.base + LAYOUT["idle"]

    @property
    def retain(self) -> str:
        """Sorted set of offline agents by the time they are deleted."""
        return self.base + LAYOUT["retain"]

    @property
    def agents(self) -> str:
        """Every known agent id."""
        return self.base + LAYOUT["agents"]

    @property
    def reaper(self) -> str:
        """Time of the last reaper sweep."""
        return self.base + LAYOUT["reaper"]

    @property
    def brake(self) -> str:
        """Set while the mass-expiry brake has fired: it holds leases once while this lives."""
        return self.base + LAYOUT["brake"]

    @property
    def braking(self) -> str:
        """Set while the mass-expiry brake holds leases; its value is how many."""
        return self.base + LAYOUT["braking"]

    @property
    def ttl_max(self) -> str:
        """The longest lease TTL registered lately, in ms."""
        return self.base + LAYOUT["ttl_max"]

    @property
    def recovering(self) -> str:
        """Set for the recovery window after Redis lost its data."""
        return self.base + LAYOUT["recovering"]

    @property
    def damped(self) -> str:
        """Sorted set of flapping agents by when their final state is due."""
        return self.base + LAYOUT["damped"]

    def flap(self, agent_id: str) -> str:
        """Events of one agent in its current flap window."""
        return self.base + LAYOUT["flap"].format(agent_id=agent_id)

    def status(self, status: str) -> str:
        """Agent ids with one status: live, idle or offline."""
        return self.base + LAYOUT["status"].format(status=status)

    def index(self, term: str) -> str:
        """Agent ids with one index term, e.g. `skill:forecast`."""
        return self.base + LAYOUT["index"].format(term=term)

    def agent(self, agent_id: str) -> str:
        """Hash with an agent's card, view and status."""
        return self.base + LAYOUT["agent"].format(agent_id=agent_id)

    def owned(self, identity: str) -> str:
        """Agent ids owned by one identity ("" for agents registered without one)."""
        return self.base + LAYOUT["owned"].format(identity=identity)

    def instances(self, agent_id: str) -> str:
        """Sorted set of an agent's live instances by lease deadline."""
        return self.base + LAYOUT["instances"].format(agent_id=agent_id)

    def instance(self, agent_id: str, instance_id: str) -> str:
        """Hash of one instance: seq, lease, tombstone."""
        return self.base + LAYOUT["instance"].format(agent_id=agent_id, instance_id=instance_id)

    @property
    def api_keys(self) -> str:
        """Every API key id (for listing; records are never deleted, only revoked)."""
        return self.base + LAYOUT["api_keys"]

    def api_key(self, key_id: str) -> str:
        """Hash of one API key's record (its secret's SHA-256, never the secret)."""
        return self.base + LAYOUT["api_key"].format(key_id=key_id)
