"""Identity (身份): persons, organisations by USCC, roles, login, API tokens, certificates."""

from core.identity.models import ORG_ROLES, Organisation, OrganisationKind, Person, Role, RoleGrant

__all__ = ["ORG_ROLES", "Organisation", "OrganisationKind", "Person", "Role", "RoleGrant"]
