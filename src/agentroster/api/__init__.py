"""The read API: discovery of agents over HTTP, probes and metrics (FastAPI).

Built by `create_api(settings)`; it reads Redis through `store.reader` and never writes.
"""

from agentroster.api.app import create_api

__all__ = ["create_api"]
