"""Identity (身份): persons, organisations by USCC, roles, login, API tokens, certificates."""

from core.identity.access import actor_for, current_actor, is_admin, require_admin, source_address
from core.identity.ca import (
    CertificateRefused,
    PlatformCA,
    issue_certificate,
    load_ca_certificate,
    revoke_certificate,
    verify_certificate,
)
from core.identity.models import (
    ORG_ROLES,
    ApiToken,
    Certificate,
    CertificateSubject,
    Organisation,
    OrganisationKind,
    Person,
    Role,
    RoleGrant,
)
from core.identity.providers import (
    AuthenticationFailed,
    Challenge,
    IdentityAssertion,
    IdentityProvider,
    get_provider,
    providers,
    register_provider,
)
from core.identity.services import (
    create_person,
    grant_role,
    organisation_by_uscc,
    person_by_email,
    register_organisation,
    revoke_role,
    set_enabled,
    set_password,
)
from core.identity.tokens import InvalidToken, issue_api_token, revoke_api_token

__all__ = [
    "ORG_ROLES", "ApiToken", "AuthenticationFailed", "Certificate", "CertificateRefused", "CertificateSubject",
    "Challenge", "IdentityAssertion", "IdentityProvider", "InvalidToken", "Organisation", "OrganisationKind",
    "Person", "PlatformCA", "Role", "RoleGrant", "actor_for", "create_person", "current_actor", "get_provider",
    "grant_role", "is_admin", "issue_api_token", "issue_certificate", "load_ca_certificate",
    "organisation_by_uscc", "person_by_email", "providers", "register_organisation", "register_provider",
    "require_admin", "revoke_api_token", "revoke_certificate", "revoke_role", "set_enabled", "set_password",
    "source_address", "verify_certificate",
]
