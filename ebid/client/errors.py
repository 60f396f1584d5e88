"""The one error the bidder's client raises: what went wrong and what to do about it."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A problem the user can fix; ``str()`` is the message, already saying how.

    ``code`` is a stable machine-readable name (the server's error code where the server refused);
    ``fields`` names the inputs concerned, as the server's ``{code, message, fields}`` errors do.
    """

    def __init__(self, message: Any, *, code: str = "client_error", fields: dict[str, list[str]] | None = None,
                 status: int | None = None) -> None:
        super().__init__(str(message))
        self.code = code
        self.fields = fields or {}
        self.status = status

    @property
    def message(self) -> str:
        return self.args[0]
