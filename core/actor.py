"""The actor: who does something, for which organisation, in which role, from where.

Services take the actor explicitly; they never look at the request. Views build it from the
logged-in person, the organisation they act for and the request's source address.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who performs an action (for the audit trail and permission checks)."""

    person_id: int | None
    name: str
    role: str | None = None
    organisation_id: int | None = None
    organisation_uscc: str | None = None
    source: str | None = None  # IP address, or "cli" / "scheduler" / "issuer-callback"
    device: str | None = None  # what the client says it is: User-Agent and the ebid client's installation id

    @classmethod
    def system(cls, source: str = "system") -> Actor:
        """The platform itself (scheduled transitions, CLI maintenance)."""
        return cls(person_id=None, name="ebid", role="system", source=source)

    @property
    def is_system(self) -> bool:
        return self.person_id is None
