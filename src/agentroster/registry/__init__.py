"""What runs of the registry's rules in Python: command validation and index terms.

The rule book itself (leases, status, the transition events, expiry, ownership, quotas) is the
Lua scripts of `agentroster.store` (`store/lua/`): they apply it atomically in Redis, and the
integration suites test it there through the worker. This package keeps only what runs before
a script is called: `prepare` turns a raw command into what the store applies, or a rejection
with a reason, within `Limits` (`TtlBounds` among them); `terms` names the secondary-index terms
an agent is indexed under and a discovery filter matches.
"""
