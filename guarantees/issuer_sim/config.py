"""Settings of one reference issuer (模拟出函机构) instance."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from guarantees.issuer_sim.underwriting import Rules
from guarantees.letters import ISSUER_KINDS
from guarantees.protocol import CALLBACK_PATH

CODE_RE = re.compile(r"^[A-Za-z0-9_]{2,32}$")
DEFAULT_VERIFY_URL = "{platform_url}/guarantees/verify?no={guarantee_no}&code={code}"


@dataclass
class SimConfig:
    """Who the issuer is, whom it trusts, and how it behaves (delay, failures, appetite)."""

    code: str                                   # its party id in messages, e.g. "BANK1"
    name: str                                   # printed on letters and in its certificates
    data_dir: Path
    kind: str = "bank"                          # bank | guarantee_company | insurer
    uscc: str | None = None                     # its own unified social credit code, put in its certificates
    platform_url: str = "http://127.0.0.1:5000"
    platform_id: str = "ebid-platform"          # the platform's sender id
    platform_public_key: ec.EllipticCurvePublicKey | None = None
    delay: float = 0.0                          # seconds before an answer (underwriting, claims, releases)
    failure_rate: float = 0.0                   # fraction of requests answered 503
    amount_limit: Decimal | None = Decimal("5000000")
    denied_usccs: frozenset[str] = field(default_factory=frozenset)
    extra_validity_days: int = 0
    verify_url_template: str = DEFAULT_VERIFY_URL
    locale: str = "zh_CN"                       # language of refusal reasons
    callback_timeout: float = 5.0
    retry_base: float = 1.0                     # first retry delay of a callback; doubles each time
    retry_max: float = 300.0
    max_attempts: int = 20
    poll_interval: float = 0.2
    seed: int | None = None                     # for a reproducible failure pattern

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        problems = []
        if not CODE_RE.match(self.code or ""):
            problems.append("code must be 2-32 letters, digits or underscores, e.g. BANK1")
        if not (self.name or "").strip():
            problems.append("name must not be empty")
        if self.kind not in ISSUER_KINDS:
            problems.append(f"kind must be one of {', '.join(ISSUER_KINDS)}")
        if not 0 <= self.failure_rate <= 1:
            problems.append("failure rate must be between 0 and 1")
        if self.delay < 0:
            problems.append("delay must not be negative")
        if self.amount_limit is not None and self.amount_limit <= 0:
            problems.append("the amount limit must be positive")
        if not self.platform_url.startswith(("http://", "https://")):
            problems.append("platform URL must start with http:// or https://")
        if problems:
            raise ValueError("; ".join(problems))
        self.denied_usccs = frozenset(u.strip().upper() for u in self.denied_usccs if u.strip())

    @property
    def rules(self) -> Rules:
        return Rules(amount_limit=self.amount_limit, denied_usccs=self.denied_usccs,
                     extra_validity_days=self.extra_validity_days)

    @property
    def callback_url(self) -> str:
        return self.platform_url.rstrip("/") + CALLBACK_PATH

    def verify_url(self, guarantee_no: str, code: str) -> str:
        return self.verify_url_template.format(platform_url=self.platform_url.rstrip("/"),
                                               guarantee_no=guarantee_no, code=code)
