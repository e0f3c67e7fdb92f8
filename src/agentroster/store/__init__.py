"""Where the registry's state lives: Redis (Lua scripts, keys in one module)."""
