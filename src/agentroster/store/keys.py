"""Every Redis key of one registry, in one place.

All keys start with `{<prefix>}:`: the braces are a Redis Cluster hash tag, so every key of
one registry lives in one slot and the multi-key scripts run on a cluster too (invariant 7).
The Lua scripts build the per-agent keys from the same base; the layout is written out here
so that this file is the one map of the data.

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
                                 est/esd (status and sdigest last told in an event), why
                                 (reason of the last change held back by flap damping)
    {p}:owned:<u>        set     agent_ids owned by identity <u> (a broker user name; "" for
                                 none): the quota of agents per identity counts it
    {p}:inst:<a>         zset    live instance_id -> lease deadline (ms)
    {p}:i:<a>:<i>        hash    seq, state, first_seen, last_seen, ttl, deadline, ignored
                                 (commands ignored by seq in a row); kept while the
                                 lease lives, then one TTL more as a tombstone, so late
                                 messages stay late
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names for one registry prefix."""

    prefix: str

    @property
    def base(self) -> str:
        """The common start of every key, hash tag included: `{prefix}:`."""
        return f"{{{self.prefix}}}:"

    @property
    def revision(self) -> str:
        """Global revision counter."""
        return self.base + "rev"

    @property
    def epoch(self) -> str:
        """Registry epoch, set when the keyspace is first written."""
        return self.base + "epoch"

    @property
    def outbox(self) -> str:
        """Stream of events: awaiting publication, then kept for replay (`events_window`)."""
        return self.base + "outbox"

    @property
    def relayed(self) -> str:
        """The last revision the relay saw confirmed."""
        return self.base + "relayed"

    @property
    def relay_lock(self) -> str:
        """Lock held by the replica that relays the outbox."""
        return self.base + "relay"

    @property
    def leases(self) -> str:
        """Sorted set of every live lease by deadline: the source of expiries."""
        return self.base + "leases"

    @property
    def idle(self) -> str:
        """Sorted set of idle agents by the end of their idle period."""
        return self.base + "idle"

    @property
    def retain(self) -> str:
        """Sorted set of offline agents by the time they are deleted."""
        return self.base + "retain"

    @property
    def agents(self) -> str:
        """Every known agent id."""
        return self.base + "agents"

    @property
    def reaper(self) -> str:
        """Time of the last reaper sweep."""
        return self.base + "reaper"

    @property
    def ttl_max(self) -> str:
        """The longest lease TTL registered lately, in ms."""
        return self.base + "ttlmax"

    @property
    def recovering(self) -> str:
        """Set for the recovery window after Redis lost its data."""
        return self.base + "recovering"

    @property
    def braking(self) -> str:
        """Set while the mass-expiry brake holds leases; its value is how many."""
        return self.base + "braking"

    @property
    def damped(self) -> str:
        """Sorted set of flapping agents by when their final state is due."""
        return self.base + "damped"

    def flap(self, agent_id: str) -> str:
        """Events of one agent in its current flap window."""
        return f"{self.base}flap:{agent_id}"

    def status(self, status: str) -> str:
        """Agent ids with one status: live, idle or offline."""
        return f"{self.base}status:{status}"

    def index(self, term: str) -> str:
        """Agent ids with one index term, e.g. `skill:forecast`."""
        return f"{self.base}ix:{term}"

    def agent(self, agent_id: str) -> str:
        """Hash with an agent's card, view and status."""
        return f"{self.base}agent:{agent_id}"

    def owned(self, identity: str) -> str:
        """Agent ids owned by one identity ("" for agents registered without one)."""
        return f"{self.base}owned:{identity}"

    def instances(self, agent_id: str) -> str:
        """Sorted set of an agent's live instances by lease deadline."""
        return f"{self.base}inst:{agent_id}"

    def instance(self, agent_id: str, instance_id: str) -> str:
        """Hash of one instance: seq, lease, tombstone."""
        return f"{self.base}i:{agent_id}:{instance_id}"
