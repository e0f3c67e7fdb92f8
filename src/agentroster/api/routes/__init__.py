"""The API's routers: agents (discovery, cards), health (probes, metrics), well-known cards."""
