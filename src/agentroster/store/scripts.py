"""The seam between Python and the Lua scripts, named once.

Each script under `store/lua/` has a `ScriptSpec` here: the keys it is called with (by their
`keys.LAYOUT` name: they route the call on a cluster), its arguments by name, the fields of the
records it takes (apply.lua: one per command), the result codes it returns, and the names of
its reply. From the spec a Lua prelude is generated and put before the script's source:

- the arguments as named locals (`local retention_ms = tonumber(ARGV[7])`), the record layout
  as `RECORDS` (ARGV index before the first record), `STRIDE` and offsets `F_<FIELD>`;
- every key builder of `keys.LAYOUT` (`K_REVISION`, `K_AGENT(agent_id)`, ...);
- the result codes (`local APPLIED = 0`, ...) and shared field lists (`SUMMARY_FIELDS`);
- `REPLY{name = value, ...}`, which lays the named head of the reply out in the spec's order,
  followed by any lists passed after it (codes, damped agents, rows).

So a script reads named values and never indexes ARGV or KEYS or spells a key itself, and
Python passes arguments and reads replies by the same names. tests/unit/test_lua_seam.py reads
the scripts and fails when the two sides disagree. The prelude costs a few string
concatenations per call, nothing next to the script's Redis calls (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis

from agentroster.registry.terms import SIGNATURE_TERMS, VERIFIED_TERMS
from agentroster.store.keys import LAYOUT, lua_builders
from agentroster.store.script_batch import ScriptBatch


class Code(IntEnum):
    """What apply.lua did with one command."""

    APPLIED = 0
    DUPLICATE = 1  # seq not above the instance's last: duplicate or late
    FORBIDDEN = 2  # another identity owns the agent
    UNKNOWN_AGENT = 3  # heartbeat for an agent whose card the registry does not have
    STALE_CARD = 4  # applied, with a card digest that differs from the registered one
    AGENT_QUOTA = 5  # over the quota of agents per identity
    INSTANCE_QUOTA = 6  # over the quota of instances per agent
    STUCK = 7  # duplicate again and again: the instance's client is stuck


#: Fields of `{p}:agent:<a>` every read takes, in this order (never `owner`): query.lua and
#: read_agent.lua read them for each agent, reader.py parses them.
SUMMARY_FIELDS = (
    "status",
    "digest",
    "view",
    "first_seen",
    "last_seen",
    "ttl",
    "interval",
    "idle_ttl",
    "rev",
    "verified",
    "signature",
)


@dataclass(frozen=True, slots=True)
class Arg:
    """One script argument; `number` ones are `tonumber`ed in the prelude."""

    name: str
    number: bool = False


#: The arguments every write script starts with (common.lua): the key base, a new epoch, the
#: epoch the caller last saw ('' if none), the recovery window, the flap window (ms) and the
#: events per agent per flap window (0: no damping).
COMMON_ARGS = (
    Arg("P"),
    Arg("new_epoch"),
    Arg("seen_epoch"),
    Arg("recovery_ms", number=True),
    Arg("flap_window", number=True),
    Arg("flap_max", number=True),
)


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """What one script takes and returns, by name (see the module docstring)."""

    file: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    reply: tuple[str, ...]
    common: bool = False
    record: tuple[str, ...] = ()
    #: what a list after the reply's head holds, one entry per row of these fields
    row: tuple[str, ...] = ()
    codes: type[IntEnum] | None = None
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: a read-only script (`#!lua flags=no-writes`: it may run on a replica)
    read_only: bool = False
    #: after the named arguments, the rest of ARGV as a list under this name
    rest: str = ""

    @property
    def arguments(self) -> tuple[Arg, ...]:
        """Every named argument in ARGV order, the common ones first."""
        return (*COMMON_ARGS, *self.args) if self.common else self.args

    def prelude(self) -> str:
        """The generated Lua put before the script (see the module docstring)."""
        lines = [f"-- generated from agentroster.store.scripts ({self.file}); do not edit"]
        for n, arg in enumerate(self.arguments, start=1):
            value = f"tonumber(ARGV[{n}])" if arg.number else f"ARGV[{n}]"
            lines.append(f"local {arg.name} = {value}")
        if self.record:
            lines.append(f"local RECORDS, STRIDE = {len(self.arguments)}, {len(self.record)}")
            lines += [f"local F_{f.upper()} = {n}" for n, f in enumerate(self.record, start=1)]
        if self.rest:
            lines.append(f"local {self.rest} = {{}}")
            lines.append(
                f"for n = {len(self.arguments) + 1}, #ARGV do "
                f"{self.rest}[#{self.rest} + 1] = ARGV[n] end"
            )
        if self.row:
            lines.append(f"local ROW = {len(self.row)}")
        if self.codes is not None:
            lines += [f"local {code.name} = {code.value}" for code in self.codes]
        for name, values in self.tables.items():
            lines.append(f"local {name} = {{{', '.join(repr(v) for v in values)}}}")
        if any(a.name == "P" for a in self.arguments):
            lines.append(lua_builders().rstrip("\n"))
        head = ", ".join(f"r.{name}" for name in self.reply)
        lines.append(
            "local function REPLY(r, ...)\n"
            f"  local out = {{{head}}}\n"
            "  for _, list in ipairs({...}) do\n"
            "    for _, v in ipairs(list) do out[#out + 1] = v end\n"
            "  end\n"
            "  return out\n"
            "end"
        )
        return "\n".join(lines) + "\n"

    def source(self) -> str:
        """The whole script as Redis runs it: flags, prelude, common.lua if a writer, body."""
        lua = files("agentroster.store") / "lua"
        parts = ["#!lua flags=no-writes\n"] if self.read_only else []
        parts.append(self.prelude())
        if self.common:
            parts.append((lua / "common.lua").read_text())
        parts.append((lua / self.file).read_text())
        return "\n".join(parts)


APPLY = ScriptSpec(
    file="apply.lua",
    keys=("revision",),
    common=True,
    args=(
        Arg("retention", number=True),
        Arg("max_agents", number=True),
        Arg("max_instances", number=True),
        Arg("n", number=True),
    ),
    # one record per command: `registry.prepare.Prepared`'s fields the script reads (not the
    # deregistration's `reason`, which nothing stores)
    record=(
        "kind",
        "agent_id",
        "instance_id",
        "seq",
        "ttl_ms",
        "interval_ms",
        "idle_ttl_ms",
        "user_id",
        "digest",
        "state_digest",
        "card",
        "view",
        "terms",
        "text",
        "trace",
        "signature",
    ),
    codes=Code,
    # then a code per command, then the agents whose events began to be damped
    reply=("events", "epoch"),
)

REAP = ScriptSpec(
    file="reap.lua",
    keys=("leases",),
    common=True,
    args=(
        Arg("limit", number=True),
        Arg("retention", number=True),
        Arg("gap_ms", number=True),
        Arg("brake_share", number=True),
        Arg("brake_min", number=True),
        Arg("budget", number=True),
    ),
    # then the agents whose events began to be damped
    reply=(
        "leases_expired",
        "idle_expired",
        "deleted",
        "more_due",
        "events",
        "graced",
        "held",
        "epoch",
        "recovery_ms_left",
        "brake_ms_left",
        "longest_ttl_ms",
    ),
)

QUERY = ScriptSpec(
    file="query.lua",
    keys=("revision",),
    args=(
        Arg("P"),
        Arg("cursor"),
        Arg("limit", number=True),
        Arg("budget", number=True),
        Arg("q"),
        Arg("text_budget", number=True),
    ),
    rest="sets",
    reply=("revision", "next_cursor"),
    row=("agent_id", "summary", "live"),
    tables={"SUMMARY_FIELDS": SUMMARY_FIELDS},
)

READ_AGENT = ScriptSpec(
    file="read_agent.lua",
    # the first agent's hash (the others share its hash tag)
    keys=("agent",),
    args=(Arg("P"), Arg("max_instances", number=True)),
    rest="agent_ids",
    # one reply per agent id, each this head
    reply=("revision", "summary", "live"),
    # then the instances, soonest lease deadline first
    row=("instance_id", "deadline", "first_seen", "last_seen"),
    tables={"SUMMARY_FIELDS": SUMMARY_FIELDS},
    read_only=True,
)

OWNER = ScriptSpec(
    file="owner.lua",
    keys=("agent",),
    args=(Arg("P"), Arg("agent_id"), Arg("action"), Arg("to")),
    reply=("found", "bound", "before"),
)

RELAY_ACQUIRE = ScriptSpec(
    file="relay_acquire.lua",
    keys=("relay_lock",),
    args=(Arg("P"), Arg("owner"), Arg("ttl_ms", number=True)),
    reply=("held", "relayed"),
)

RELAY_RELEASE = ScriptSpec(
    file="relay_release.lua",
    keys=("relay_lock",),
    args=(Arg("P"), Arg("owner")),
    reply=("released",),
)

MARK_RELAYED = ScriptSpec(
    file="mark_relayed.lua",
    keys=("relayed", "outbox"),
    args=(Arg("P"), Arg("revision", number=True), Arg("window", number=True)),
    reply=("relayed", "backlog"),
)

VERIFY = ScriptSpec(
    file="verify.lua",
    keys=("agent",),
    common=True,
    args=(Arg("agent_id"), Arg("sdigest"), Arg("verified", number=True)),
    # then the agents whose events began to be damped
    reply=("recorded", "changed", "events", "epoch"),
    tables={"VERIFIED_TERMS": VERIFIED_TERMS},
)

SIGN = ScriptSpec(
    file="signature.lua",
    keys=("agent",),
    common=True,
    args=(Arg("agent_id"), Arg("sdigest"), Arg("signature")),
    # then the agents whose events began to be damped
    reply=("recorded", "changed", "events", "epoch"),
    tables={"SIGNATURE_TERMS": SIGNATURE_TERMS},
)

#: Every script, for the seam test.
SPECS = (
    APPLY,
    REAP,
    QUERY,
    READ_AGENT,
    OWNER,
    RELAY_ACQUIRE,
    RELAY_RELEASE,
    MARK_RELAYED,
    VERIFY,
    SIGN,
)


class Script:
    """One loaded script, called with its arguments by name; redis-py's `Script` runs
    `EVALSHA` and reloads the script after a Redis restart (NOSCRIPT). `batched`: concurrent
    calls are merged into one (store/script_batch.py), for read-only scripts on hot paths that
    reply once per item of their `rest` list."""

    def __init__(self, redis: Redis, spec: ScriptSpec, *, batched: bool = False) -> None:
        self.spec = spec
        self._names = [arg.name for arg in spec.arguments]
        self._run = redis.register_script(spec.source())
        if batched and not spec.rest:
            raise ValueError(f"{spec.file} has no `rest` list to merge calls by")
        #: concurrent calls merged into one (store/script_batch.py): read-only scripts
        self._batch = ScriptBatch(self._run) if batched else None

    async def __call__(
        self, keys: Sequence[str], args: Mapping[str, Any], extra: Sequence[Any] = ()
    ) -> list[Any]:
        """Run the script; `keys` in the spec's order, `extra` after the named arguments
        (records, or the `rest` list). Returns the raw reply (see `head`)."""
        if len(keys) != len(self.spec.keys):
            raise ValueError(f"{self.spec.file} takes the keys {self.spec.keys}")
        argv = [args[name] for name in self._names]
        if self._batch is not None:  # concurrent calls merged: their `rest` lists joined
            reply: Any = await self._batch(list(keys), argv, extra)
        else:
            reply = await self._run(keys=list(keys), args=[*argv, *extra] if extra else argv)
        return reply if isinstance(reply, list) else [reply]

    def head(self, reply: Sequence[Any]) -> tuple[dict[str, Any], Sequence[Any]]:
        """The reply's named head, and what follows it."""
        n = len(self.spec.reply)
        return dict(zip(self.spec.reply, reply[:n], strict=True)), reply[n:]

    def rows(self, tail: Sequence[Any]) -> list[Sequence[Any]]:
        """The tail of a reply as rows of the spec's `row` fields."""
        width = len(self.spec.row)
        return [tail[n : n + width] for n in range(0, len(tail), width)]


def key_names() -> set[str]:
    """Every key builder the prelude defines (`K_<NAME>`)."""
    return {f"K_{name.upper()}" for name in LAYOUT}
