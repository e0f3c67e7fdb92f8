"""The one failure of the write gateway a client sees: the broker did not take the command."""

from __future__ import annotations


class BrokerUnavailable(Exception):
    """The broker did not take the command (down, or it refused the publish): retry later."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
