"""The registry's domain rules: lease arithmetic, status, transitions, command validation."""
