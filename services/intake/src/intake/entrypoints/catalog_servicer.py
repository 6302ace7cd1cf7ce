"""The procedure catalog's gRPC API (``motcua.catalog.v1.CatalogService``): decode → ask the
catalog → encode. Read-only; errors are motcua.errors (NotFound, InvalidArgument), which the
kernel's interceptor turns into status codes.

Register it beside IntakeService in the api process::

    server, port, _ = build_server([SERVICE_NAME, catalog_servicer.SERVICE_NAME],
                                   lambda s: (add_IntakeServiceServicer_to_server(servicer, s),
                                              catalog_servicer.add_catalog_service(s, catalog)), ...)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from intake.domain.catalog import (
    Catalog,
    Component,
    Level,
    Procedure,
    Role,
    Step,
    SupplementPolicy,
    TimeType,
    Unit,
    procedure_sort_key,
    unit_sort_key,
)
from motcua.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from motcua.errors import InvalidArgument, NotFound, quote

SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

LEVELS: dict[Level, int] = {
    Level.PROVINCE: catalog_pb2.UNIT_LEVEL_PROVINCE,
    Level.DISTRICT: catalog_pb2.UNIT_LEVEL_DISTRICT,
    Level.COMMUNE: catalog_pb2.UNIT_LEVEL_COMMUNE,
}
ROLES: dict[Role, int] = {
    Role.RECEIVE: catalog_pb2.STEP_ROLE_RECEIVE,
    Role.ASSIGN: catalog_pb2.STEP_ROLE_ASSIGN,
    Role.REVIEW: catalog_pb2.STEP_ROLE_REVIEW,
    Role.APPROVE: catalog_pb2.STEP_ROLE_APPROVE,
    Role.SIGN: catalog_pb2.STEP_ROLE_SIGN,
    Role.SEAL: catalog_pb2.STEP_ROLE_SEAL,
    Role.RETURN: catalog_pb2.STEP_ROLE_RETURN,
}
TIME_TYPES: dict[TimeType, int] = {
    TimeType.WORKING_DAYS: catalog_pb2.TIME_TYPE_WORKING_DAYS,
    TimeType.CALENDAR_DAYS: catalog_pb2.TIME_TYPE_CALENDAR_DAYS,
}
POLICIES: dict[SupplementPolicy, int] = {
    SupplementPolicy.PAUSE: catalog_pb2.SUPPLEMENT_POLICY_PAUSE,
    SupplementPolicy.RESTART: catalog_pb2.SUPPLEMENT_POLICY_RESTART,
}

T = TypeVar("T")


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def ListProcedures(self, request: catalog_pb2.ListProceduresRequest, context: grpc.ServicerContext):
        level = level_of(request.level, "level")
        if request.sector and request.sector not in self._catalog.sectors:
            raise NotFound(f"sector {quote(request.sector)} is not a sector of the catalog")
        if request.unit:
            self._unit(request.unit)
        found = self._catalog.list_procedures(level=level, sector=request.sector or None, unit=request.unit or None)
        filters = ("procedures", level, request.sector, request.unit)
        page, token = paginate(found, lambda p: p.code, procedure_sort_key, request.page_size, request.page_token,
                               filters)
        return catalog_pb2.ListProceduresResponse(
            procedures=[procedure_message(p, self._catalog) for p in page], next_page_token=token,
            total_size=len(found), catalog_version=self._catalog.version)

    def GetProcedure(self, request: catalog_pb2.GetProcedureRequest, context: grpc.ServicerContext):
        if not request.code:
            raise InvalidArgument("code", "is required: a national procedure code such as 1.004616")
        if request.version < 0:
            raise InvalidArgument("version", "must not be negative (0: the current version)")
        versions = self._catalog.versions(request.code)
        procedure = (self._catalog.procedure_version(request.code, request.version) if request.version
                     else versions[-1])
        return catalog_pb2.GetProcedureResponse(procedure=procedure_message(procedure, self._catalog),
                                                versions=[p.version for p in versions],
                                                current_version=versions[-1].version)

    def ListUnits(self, request: catalog_pb2.ListUnitsRequest, context: grpc.ServicerContext):
        level = level_of(request.level, "level")
        if request.parent:
            self._unit(request.parent)
        found = self._catalog.list_units(parent=request.parent or None, level=level)
        filters = ("units", level, request.parent)
        page, token = paginate(found, lambda u: u.unit_id, unit_sort_key, request.page_size, request.page_token,
                               filters)
        return catalog_pb2.ListUnitsResponse(units=[self._unit_message(u) for u in page], next_page_token=token,
                                             total_size=len(found), catalog_version=self._catalog.version)

    def GetUnit(self, request: catalog_pb2.GetUnitRequest, context: grpc.ServicerContext):
        if not request.slug and not request.unit_id:
            raise InvalidArgument("slug", "give the unit's slug or its unit_id")
        if request.slug:
            unit = self._unit(request.slug)
            if request.unit_id and request.unit_id != unit.unit_id:
                raise InvalidArgument("unit_id", f"{quote(request.unit_id)} is not the identifier of {unit.slug!r} "
                                                 f"({unit.unit_id})")
        else:
            unit = self._catalog.unit_by_id(request.unit_id)
        return catalog_pb2.GetUnitResponse(unit=self._unit_message(unit))

    def _unit_message(self, unit: Unit) -> catalog_pb2.Unit:
        return unit_message(unit, self._catalog.area(unit.slug).slug)

    def _unit(self, slug: str) -> Unit:
        unit = self._catalog.units.get(slug)
        if unit is None:
            raise NotFound(f"unit {quote(slug)} is not a unit of the catalog")
        return unit


def add_catalog_service(server: grpc.Server, catalog: Catalog) -> CatalogServicer:
    """Serve ``catalog`` as motcua.catalog.v1.CatalogService on ``server`` (not yet started)."""
    servicer = CatalogServicer(catalog)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)
    return servicer


# -- decoding -------------------------------------------------------------------------------------


def level_of(value: int, field: str) -> Level | None:
    if value == catalog_pb2.UNIT_LEVEL_UNSPECIFIED:
        return None
    for level, number in LEVELS.items():
        if number == value:
            return level
    raise InvalidArgument(field, f"{value} is not a UnitLevel")


def paginate(items: Sequence[T], key: Callable[[T], str], order: Callable[[str], Any], page_size: int,
             page_token: str, filters: tuple) -> tuple[list[T], str]:
    """One page of ``items`` (sorted by ``order(key(item))``) and the token of the next page ("" on
    the last). A token holds the last key of its page, so a page follows on even when the catalog
    has changed between calls, and the filters it was issued for, so it is refused with others."""
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    digest = hashlib.sha256(json.dumps(filters, default=str).encode()).hexdigest()[:16]
    rest = list(items)
    if page_token:
        after = _read_token(page_token, digest)
        rest = [item for item in rest if order(key(item)) > order(after)]
    page = rest[:size]
    token = _token(key(page[-1]), digest) if len(rest) > size else ""
    return page, token


def _token(after: str, digest: str) -> str:
    raw = json.dumps({"after": after, "filters": digest}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str, digest: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, issued_for = data["after"], data["filters"]
        if not isinstance(after, str) or not isinstance(issued_for, str):
            raise TypeError
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidArgument("page_token", "is not a page token this API issued; start again without one") from None
    if issued_for != digest:
        raise InvalidArgument("page_token", "was issued for a request with other filters; repeat those filters or "
                                            "start again without a token")
    return after


# -- encoding -------------------------------------------------------------------------------------


def unit_message(unit: Unit, area: str) -> catalog_pb2.Unit:
    return catalog_pb2.Unit(slug=unit.slug, unit_id=unit.unit_id, name=unit.name, level=LEVELS[Level(unit.level)],
                            parent=unit.parent or "", area=area)


def component_message(component: Component) -> catalog_pb2.Component:
    return catalog_pb2.Component(code=component.code, name=component.name, required=component.required,
                                 media_types=sorted(component.media_types), originals=component.originals,
                                 copies=component.copies, max_bytes=component.max_bytes or 0)


def step_message(step: Step) -> catalog_pb2.ProcessStep:
    handler: dict[str, Any] = {"unit": step.unit} if step.unit else {"level": LEVELS[Level(step.level)]}
    return catalog_pb2.ProcessStep(role=ROLES[Role(step.role)], share=step.share, forward=step.forward,
                                   name=step.name, **handler)


def procedure_message(procedure: Procedure, catalog: Catalog) -> catalog_pb2.Procedure:
    sector = catalog.sectors.get(procedure.sector)
    return catalog_pb2.Procedure(
        code=procedure.code, version=procedure.version, name=procedure.name,
        sector=catalog_pb2.Sector(code=procedure.sector, name=sector.name if sector else ""),
        level=LEVELS[Level(procedure.level)], handling_level=LEVELS[Level(procedure.handling_level)],
        units=sorted(procedure.units), fee=procedure.fee, fee_note=procedure.fee_note,
        components=[component_message(c) for c in procedure.components],
        desk_days=procedure.duration.desk_days, online_days=procedure.duration.online_days,
        time_type=TIME_TYPES[TimeType(procedure.time_type)],
        supplement_policy=POLICIES[SupplementPolicy(procedure.supplement_policy)],
        steps=[step_message(s) for s in procedure.process],
        effective_from=procedure.effective_from.isoformat() if procedure.effective_from else "",
        retention=procedure.retention)
