"""The expert pool (评标专家库): import from CSV, search, status, and how often each expert was drawn.

Every expert is linked to a person holding the expert role, so that they can log in, answer invitations
and sign in to evaluations. The CSV import (UTF-8, header row) is all-or-nothing: every bad line is
reported with its line number and what to fix, and nothing is stored until the whole file is clean; a
line whose code exists updates that expert.

Columns: ``code,name,email,specialties,region,employer_uscc,employer_name,title,avoidance_usccs,available``
(specialties and avoidance units separated by ``;``), optionally ``penalised`` and ``supervision_staff``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from bidding.models import Tender
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.identity import create_person, grant_role, person_by_email, require_admin
from core.identity import uscc as uscc_mod
from core.identity.models import Organisation, Person, Role
from evaluation.draw_errors import ImportRejected
from evaluation.draw_rules import REGION_CODE, SPECIALTY_CODE
from evaluation.pool_models import CommitteeMember, Expert

COLUMNS = ("code", "name", "email", "specialties", "region", "employer_uscc", "employer_name", "title",
           "avoidance_usccs", "available")
OPTIONAL_COLUMNS = ("penalised", "supervision_staff")
EXPERT_CODE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
YES = {"1", "yes", "y", "true", "是", ""}
NO = {"0", "no", "n", "false", "否"}
MAX_LINES = 20000


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    persons_created: list[str] = field(default_factory=list)


def expert_by_code(code: str) -> Expert | None:
    return db.session.scalar(select(Expert).where(Expert.code == code))


def expert_of_person(person_id: int | None) -> Expert | None:
    if person_id is None:
        return None
    return db.session.scalar(select(Expert).where(Expert.person_id == person_id))


def _flag(value: str, column: str, default: bool, problems: list[str]) -> bool:
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in YES:
        return True
    if text in NO:
        return False
    problems.append(str(_l("%(column)s must be 1 or 0 (yes or no), not '%(value)s'.", column=column, value=value)))
    return default


def _usccs(value: str, column: str, problems: list[str]) -> list[str]:
    out = []
    for part in (value or "").split(";"):
        code = uscc_mod.normalize(part)
        if not code:
            continue
        problem = uscc_mod.problem(code)
        if problem is not None:
            problems.append(str(_l("%(column)s %(uscc)s: %(problem)s", column=column, uscc=code,
                                   problem=problem.message)))
        elif code not in out:
            out.append(code)
    return out


def parse_line(row: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """One CSV line as expert fields, and what is wrong with it (empty when it is clean)."""
    problems: list[str] = []
    get = lambda name: (row.get(name) or "").strip()  # noqa: E731
    code, name, email = get("code"), get("name"), get("email").lower()
    if not EXPERT_CODE.match(code):
        problems.append(str(_l("code must be 1 to 32 letters, digits or hyphens, not '%(value)s'.", value=code)))
    if not name or len(name) > 100:
        problems.append(str(_l("name must have 1 to 100 characters.")))
    if email and not EMAIL.match(email):
        problems.append(str(_l("email '%(value)s' is not an e-mail address.", value=email)))
    specialties = [s.strip().upper() for s in get("specialties").split(";") if s.strip()]
    if not specialties:
        problems.append(str(_l("specialties is empty; give at least one specialty code, e.g. A010101;B020202.")))
    for s in specialties:
        if not SPECIALTY_CODE.match(s):
            problems.append(str(_l("specialty '%(value)s' is not a code of upper-case letters and digits.", value=s)))
    region = get("region")
    if not REGION_CODE.match(region):
        problems.append(str(_l("region must be a 6-digit administrative division code, not '%(value)s'.",
                               value=region)))
    employer = _usccs(get("employer_uscc"), "employer_uscc", problems)
    if len(employer) > 1:
        problems.append(str(_l("employer_uscc holds one code only.")))
    values = {"code": code, "name": name, "email": email or None, "specialties": list(dict.fromkeys(specialties)),
              "region": region, "employer_uscc": employer[0] if employer else None,
              "employer_name": get("employer_name")[:200] or None, "title": get("title")[:100] or None,
              "avoidance_usccs": _usccs(get("avoidance_usccs"), "avoidance_usccs", problems),
              "is_available": _flag(get("available"), "available", True, problems)}
    for column, attr in (("penalised", "is_penalised"), ("supervision_staff", "is_supervision_staff")):
        if column in row:
            values[attr] = _flag(get(column), column, False, problems)
    return values, problems


def read_csv(data: bytes | str) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """Parse the whole file: (line number, expert fields) for every line, and every problem found."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return [], [(1, str(_l("The file is not UTF-8 text (byte %(position)s); save it as CSV UTF-8.",
                                   position=exc.start)))]
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [(1, str(_l("The header row lacks the column(s) %(columns)s; the first line must be: %(all)s",
                               columns=", ".join(missing), all=",".join(COLUMNS))))]
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    emails: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if len(rows) >= MAX_LINES:
            problems.append((line, str(_l("At most %(max)s experts per file; split the file.", max=MAX_LINES))))
            break
        if None in raw:
            problems.append((line, str(_l("The line has more fields than the header; quote text with commas."))))
            continue
        values, line_problems = parse_line(raw)
        if values["code"] in seen:
            line_problems.append(str(_l("code %(code)s is already on line %(line)s.", code=values["code"],
                                        line=seen[values["code"]])))
        if values["email"] and values["email"] in emails:
            line_problems.append(str(_l("email %(email)s is already on line %(line)s.", email=values["email"],
                                        line=emails[values["email"]])))
        seen.setdefault(values["code"], line)
        if values["email"]:
            emails.setdefault(values["email"], line)
        problems.extend((line, text) for text in line_problems)
        rows.append((line, values))
    if not rows and not problems:
        problems.append((1, str(_l("The file has a header but no expert lines."))))
    return rows, problems


def _check_person(line: int, values: dict[str, Any], problems: list[tuple[int, str]]) -> Person | None:
    if not values["email"]:
        return None
    person = person_by_email(values["email"])
    if person is None:
        return None
    other = db.session.scalar(select(Expert).where(Expert.person_id == person.id, Expert.code != values["code"]))
    if other is not None:
        problems.append((line, str(_l("email %(email)s belongs to expert %(code)s; give each expert their own "
                                      "e-mail.", email=values["email"], code=other.code))))
    return person


def import_experts(actor: Actor, data: bytes | str) -> ImportReport:
    """Import the pool from CSV (administrators): all lines or none; raise ImportRejected listing bad lines."""
    require_admin(actor)
    rows, problems = read_csv(data)
    persons = {line: _check_person(line, values, problems) for line, values in rows}
    if problems:
        raise ImportRejected(sorted(problems))
    report = ImportReport()
    for line, values in rows:
        expert = expert_by_code(values["code"])
        person = persons[line]
        if person is None and values["email"]:
            person = create_person(actor, values["email"], values["name"])
            report.persons_created.append(values["email"])
        if person is not None:
            grant_role(actor, person, Role.EXPERT)
        fields = {k: v for k, v in values.items() if k != "email"}
        if expert is None:
            expert = Expert(**fields)
            db.session.add(expert)
            report.created.append(values["code"])
        else:
            for name, value in fields.items():
                setattr(expert, name, value)
            report.updated.append(values["code"])
        if person is not None:
            expert.person = person
        if expert.is_available:
            expert.unavailable_reason = None
    db.session.flush()
    audit.record(actor, "experts.imported", "expert", None,
                 {"created": report.created, "updated": report.updated, "persons_created": len(report.persons_created)})
    return report


def set_status(actor: Actor, expert: Expert, *, is_available: bool | None = None, reason: str | None = None,
               is_penalised: bool | None = None, is_supervision_staff: bool | None = None) -> Expert:
    """Change an expert's availability or flags (administrators)."""
    require_admin(actor)
    changes: dict[str, Any] = {}
    for name, value in (("is_available", is_available), ("is_penalised", is_penalised),
                        ("is_supervision_staff", is_supervision_staff)):
        if value is not None and getattr(expert, name) != value:
            setattr(expert, name, value)
            changes[name] = value
    if is_available is not None:
        expert.unavailable_reason = None if is_available else (reason or "").strip()[:500] or None
    db.session.flush()
    audit.record(actor, "expert.status", "expert", expert.id, {"code": expert.code, **changes})
    return expert


def search(query: str | None = None, specialty: str | None = None, limit: int = 200) -> list[Expert]:
    """Experts whose code, name or employer matches ``query``, holding ``specialty`` if given."""
    stmt = select(Expert).order_by(Expert.code)
    text = (query or "").strip()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(or_(Expert.code.ilike(like), Expert.name.ilike(like), Expert.employer_name.ilike(like),
                              Expert.employer_uscc == text.upper()))
    rows = list(db.session.scalars(stmt))
    if specialty:
        rows = [e for e in rows if specialty.strip().upper() in (e.specialties or [])]
    return rows[:limit]


def draws_for_tenderer(tenderer_id: int, *, days: int = 365) -> dict[int, int]:
    """How often each expert was drawn (member or alternate) for tenders of ``tenderer_id`` in the period."""
    since = now() - timedelta(days=days)
    stmt = (select(CommitteeMember.expert_id, func.count(CommitteeMember.id))
            .join(Tender, Tender.id == CommitteeMember.tender_id)
            .where(Tender.tenderer_id == tenderer_id, CommitteeMember.invited_at.is_not(None),
                   CommitteeMember.invited_at >= since)
            .group_by(CommitteeMember.expert_id))
    return {expert_id: count for expert_id, count in db.session.execute(stmt)}


def history(expert_id: int) -> list[dict[str, Any]]:
    """The tenderers ``expert_id`` was drawn for, with how often (all time), most frequent first."""
    stmt = (select(Organisation.id, Organisation.name, Organisation.uscc, func.count(CommitteeMember.id))
            .join(Tender, Tender.id == CommitteeMember.tender_id)
            .join(Organisation, Organisation.id == Tender.tenderer_id)
            .where(CommitteeMember.expert_id == expert_id)
            .group_by(Organisation.id, Organisation.name, Organisation.uscc)
            .order_by(func.count(CommitteeMember.id).desc(), Organisation.name))
    return [{"tenderer_id": i, "name": n, "uscc": u, "count": c} for i, n, u, c in db.session.execute(stmt)]
