"""Who may call what (DESIGN.md, least privilege): mutual TLS tells which agency calls, an access
list says which methods and which areas each agency may use (an area is the district-level
unit a dossier's receiving unit lies in, or the province: ``motcua.areas``).

The access list is a YAML file an operator edits::

    # Methods anyone may call, with or without a client certificate.
    public:
      - motcua.intake.v1.IntakeService/TrackDossier
      - motcua.catalog.v1.CatalogService/*
    agencies:
      # the common name (CN) of the agency's client certificate
      cong-dich-vu-cong-quoc-gia:
        methods: ["motcua.intake.v1.IntakeService/*"]
        areas: ["*"]
      ubnd-thi-xa-bim-son:   # its dossiers and those of its wards
        methods: [motcua.intake.v1.IntakeService/GetDossier]
        areas: [bim-son]

The gRPC edge calls :meth:`AccessList.authorize` before every method (``build_server`` does it) and
keeps the caller's grant for the call; a servicer that learns an area only from the data it
loads (GetDossier) then calls :func:`require_area`. Health and reflection are always public.
Without an access list (development) every caller may do everything.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from motcua.errors import PermissionDenied, Unauthenticated

ALWAYS_PUBLIC = ("grpc.health.v1.Health/*", "grpc.reflection.v1alpha.ServerReflection/*",
                 "grpc.reflection.v1.ServerReflection/*")


class AccessListError(ValueError):
    """The access list file is malformed; the message names the file and the place in it."""


@dataclass(frozen=True)
class Grant:
    """What one agency may call, and for which areas."""

    agency: str
    methods: frozenset[str]
    areas: frozenset[str]

    def allows_method(self, method: str) -> bool:
        return _matches(self.methods, method)

    def allows_area(self, area: str) -> bool:
        return "*" in self.areas or area in self.areas


EVERYTHING = Grant(agency="", methods=frozenset({"*"}), areas=frozenset({"*"}))
_current: contextvars.ContextVar[Grant] = contextvars.ContextVar("motcua_grant", default=EVERYTHING)


@dataclass(frozen=True)
class AccessList:
    agencies: Mapping[str, Grant]
    public: frozenset[str]

    @classmethod
    def load(cls, path: str | Path) -> AccessList:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise AccessListError(f"{path}: cannot read the access list: {exc}") from exc
        return cls.from_dict({} if data is None else data, str(path))

    @classmethod
    def from_dict(cls, data: Any, where: str = "access list") -> AccessList:
        if not isinstance(data, dict):
            raise AccessListError(f"{where}: must be a mapping with 'agencies' (and 'public')")
        unknown = set(data) - {"agencies", "public"}
        if unknown:
            raise AccessListError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        public = _names(data.get("public") or [], f"{where}: public")
        agencies = {}
        for agency, grant in (data.get("agencies") or {}).items():
            at = f"{where}: agencies.{agency}"
            if not isinstance(grant, dict) or set(grant) - {"methods", "areas"}:
                raise AccessListError(f"{at}: must be a mapping with 'methods' and 'areas'")
            agencies[str(agency)] = Grant(str(agency), _names(grant.get("methods"), f"{at}.methods"),
                                          _names(grant.get("areas"), f"{at}.areas"))
        return cls(agencies, public)

    def authorize(self, agency: str | None, method: str) -> Grant:
        """The grant the caller acts under for ``method`` (``/package.Service/Method``); raises
        Unauthenticated without an identity, PermissionDenied without the right."""
        if _matches(self.public | frozenset(ALWAYS_PUBLIC), method):
            return EVERYTHING if agency is None else self.agencies.get(agency, EVERYTHING)
        if agency is None:
            raise Unauthenticated(f"{method.lstrip('/')} needs a client certificate of an agency")
        grant = self.agencies.get(agency)
        if grant is None:
            raise PermissionDenied(f"agency {agency!r} is not on the access list")
        if not grant.allows_method(method):
            raise PermissionDenied(f"agency {agency!r} may not call {method.lstrip('/')}")
        return grant


def enter(grant: Grant) -> contextvars.Token:
    """Make ``grant`` the current call's (the edge does this around each call)."""
    return _current.set(grant)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)


def require_area(area: str) -> None:
    """Refuse the current call if its agency may not see the dossiers of ``area``."""
    grant = _current.get()
    if not grant.allows_area(area):
        raise PermissionDenied(f"agency {grant.agency!r} may not see dossiers of area {area!r}")


def _matches(patterns: Iterable[str], method: str) -> bool:
    name = method.lstrip("/")
    service = name.rpartition("/")[0]
    return any(p == "*" or p == name or p == f"{service}/*" for p in patterns)


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AccessListError(f"{where}: must be a list of non-empty strings")
    return frozenset(value)
