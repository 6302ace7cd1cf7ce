"""The catalog's gRPC API as an agency sees it: the real CatalogServicer on the bundled Thanh Hóa
sample, in a grpcio server built by motcua.grpcsupport.build_server (health, reflection, the error
interceptor) on a free port, called with a stock grpcio client through the generated stubs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.testing import rpc_error

from intake.adapters.catalog_file import load_catalog
from intake.config import DEFAULT_CATALOG
from intake.domain.catalog import Catalog
from intake.entrypoints.catalog_servicer import SERVICE_NAME, add_catalog_service, paginate
from motcua.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from motcua.errors import InvalidArgument
from motcua.grpcsupport import build_server

pytestmark = pytest.mark.integration

DISTRICT, COMMUNE, PROVINCE = (catalog_pb2.UNIT_LEVEL_DISTRICT, catalog_pb2.UNIT_LEVEL_COMMUNE,
                               catalog_pb2.UNIT_LEVEL_PROVINCE)


@pytest.fixture(scope="module")
def sample() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


@pytest.fixture(scope="module")
def channel(sample: Catalog) -> Iterator[grpc.Channel]:
    server, port, _ = build_server([SERVICE_NAME], lambda s: add_catalog_service(s, sample), "127.0.0.1", 0,
                                   reflection_on=True, workers=4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(grace=None).wait()


@pytest.fixture(scope="module")
def api(channel: grpc.Channel) -> catalog_pb2_grpc.CatalogServiceStub:
    return catalog_pb2_grpc.CatalogServiceStub(channel)



def all_pages(call, request, page_size: int) -> tuple[list, list[str]]:
    """Every item of a paginated list, and the tokens used."""
    items, tokens = [], []
    request.page_size = page_size
    while True:
        answer = call(request, timeout=10)
        items.extend(answer.procedures if hasattr(answer, "procedures") else answer.units)
        if not answer.next_page_token:
            return items, tokens
        tokens.append(answer.next_page_token)
        request.page_token = answer.next_page_token


def test_health_is_serving(channel):
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                                        timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


# -- procedures -----------------------------------------------------------------------------------


def test_list_procedures_gives_current_versions_in_code_order(api, sample: Catalog):
    answer = api.ListProcedures(catalog_pb2.ListProceduresRequest(), timeout=10)

    assert [p.code for p in answer.procedures] == [p.code for p in sample.list_procedures()]
    assert answer.total_size == len(sample.procedures) >= 12
    assert answer.next_page_token == "" and answer.catalog_version == sample.version
    permit = next(p for p in answer.procedures if p.code == "1.004616")
    assert permit.version == 2 and permit.online_days == 12


def test_list_procedures_page_by_page(api, sample: Catalog):
    whole = [p.code for p in sample.list_procedures()]

    paged, tokens = all_pages(api.ListProcedures, catalog_pb2.ListProceduresRequest(), page_size=5)

    assert [p.code for p in paged] == whole  # each once, in order
    assert len(tokens) == (len(whole) - 1) // 5
    first = api.ListProcedures(catalog_pb2.ListProceduresRequest(page_size=5), timeout=10)
    assert len(first.procedures) == 5 and first.total_size == len(whole)


@pytest.mark.parametrize("request_, expected", [
    pytest.param(catalog_pb2.ListProceduresRequest(level=COMMUNE),
                 ["1.000656", "1.000894", "1.001193", "1.001699", "1.001776", "1.004873", "2.000635", "2.000815",
                  "2.000884"], id="commune-level"),
    pytest.param(catalog_pb2.ListProceduresRequest(sector="ho-kinh-doanh"), ["1.001612", "2.000720"],
                 id="one-sector"),
    pytest.param(catalog_pb2.ListProceduresRequest(unit="bim-son"),
                 ["1.001612", "1.004616", "1.012753", "2.000720"], id="received-by-a-district"),
    pytest.param(catalog_pb2.ListProceduresRequest(unit="xa-xuan-hoa", sector="chung-thuc"),
                 ["2.000815", "2.000884"], id="received-by-a-commune-in-one-sector"),
    pytest.param(catalog_pb2.ListProceduresRequest(level=PROVINCE), ["1.004227"], id="one-at-the-province"),
])
def test_list_procedures_filters(api, request_, expected):
    answer = api.ListProcedures(request_, timeout=10)
    assert [p.code for p in answer.procedures] == expected
    assert answer.total_size == len(expected)


def test_get_procedure_current_and_older_version(api):
    current = api.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.004616"), timeout=10)
    older = api.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.004616", version=1), timeout=10)

    assert (list(current.versions), current.current_version) == ([1, 2], 2)
    assert (list(older.versions), older.current_version) == ([1, 2], 2)
    permit, first = current.procedure, older.procedure
    assert (permit.code, permit.version, first.version) == ("1.004616", 2, 1)
    assert permit.name == "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ"
    assert (permit.sector.code, permit.sector.name) == ("hoat-dong-xay-dung", "Hoạt động xây dựng")
    assert (permit.level, permit.handling_level) == (DISTRICT, DISTRICT)
    assert permit.supplement_policy == catalog_pb2.SUPPLEMENT_POLICY_RESTART
    assert first.supplement_policy == catalog_pb2.SUPPLEMENT_POLICY_PAUSE
    assert (permit.desk_days, permit.online_days, first.online_days) == (15, 12, 15)
    assert permit.time_type == catalog_pb2.TIME_TYPE_WORKING_DAYS
    assert (permit.effective_from, first.effective_from) == ("2025-01-01", "2021-03-03")
    assert permit.fee == 75000
    components = {c.code: c for c in permit.components}
    assert components["don-de-nghi"].required and not components["ban-ve"].required
    assert list(components["don-de-nghi"].media_types) == ["application/pdf", "image/jpeg", "image/png"]
    assert components["don-de-nghi"].max_bytes == 10 * 1024 * 1024 and components["ban-ve"].max_bytes == 0
    assert [s.role for s in permit.steps] == [catalog_pb2.STEP_ROLE_RECEIVE, catalog_pb2.STEP_ROLE_ASSIGN,
                                              catalog_pb2.STEP_ROLE_REVIEW, catalog_pb2.STEP_ROLE_APPROVE,
                                              catalog_pb2.STEP_ROLE_SIGN, catalog_pb2.STEP_ROLE_SEAL,
                                              catalog_pb2.STEP_ROLE_RETURN]
    assert sum(s.share for s in permit.steps) == pytest.approx(1)
    assert all(s.WhichOneof("handler") == "level" and s.level == DISTRICT for s in permit.steps)
    assert [s.forward for s in permit.steps].count(True) == 1


def test_get_procedure_steps_name_a_unit_or_a_level(api):
    land = api.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.012753"), timeout=10).procedure
    assert [(s.WhichOneof("handler"), s.unit or s.level) for s in land.steps][:2] == [
        ("level", DISTRICT), ("unit", "van-phong-dang-ky-dat-dai")]
    welfare = api.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.001776"), timeout=10).procedure
    assert (welfare.level, welfare.handling_level) == (COMMUNE, DISTRICT)
    assert [round(s.share, 2) for s in welfare.steps] == [0.05, 0.35, 0.3, 0.1, 0.1, 0.05, 0.05]
    disability = api.GetProcedure(catalog_pb2.GetProcedureRequest(code="1.001699"), timeout=10).procedure
    assert disability.time_type == catalog_pb2.TIME_TYPE_CALENDAR_DAYS


# -- units ----------------------------------------------------------------------------------------


def test_list_units_in_tree_order_and_by_parent_or_level(api, sample: Catalog):
    every = api.ListUnits(catalog_pb2.ListUnitsRequest(), timeout=10)
    assert every.total_size == len(sample.units) and every.catalog_version == sample.version
    assert [u.slug for u in every.units][:3] == ["thanh-hoa", "bim-son", "phuong-ba-dinh"]

    children = api.ListUnits(catalog_pb2.ListUnitsRequest(parent="bim-son"), timeout=10)
    assert [(u.slug, u.parent, u.level) for u in children.units] == [
        ("phuong-ba-dinh", "bim-son", COMMUNE), ("phuong-ngoc-trao", "bim-son", COMMUNE),
        ("phuong-lam-son", "bim-son", COMMUNE)]
    districts = api.ListUnits(catalog_pb2.ListUnitsRequest(level=DISTRICT), timeout=10)
    assert [(u.slug, u.unit_id) for u in districts.units] == [
        ("bim-son", "000.00.06.H56"), ("ba-thuoc", "000.00.12.H56"), ("tho-xuan", "000.00.20.H56")]
    agencies = api.ListUnits(catalog_pb2.ListUnitsRequest(parent="thanh-hoa", level=PROVINCE), timeout=10)
    assert [u.slug for u in agencies.units] == ["van-phong-dang-ky-dat-dai"]

    paged, tokens = all_pages(api.ListUnits, catalog_pb2.ListUnitsRequest(), page_size=4)
    assert [u.slug for u in paged] == [u.slug for u in every.units] and len(tokens) == 3


@pytest.mark.parametrize("request_", [
    pytest.param(catalog_pb2.GetUnitRequest(slug="ba-thuoc"), id="by-slug"),
    pytest.param(catalog_pb2.GetUnitRequest(unit_id="000.00.12.H56"), id="by-identifier"),
    pytest.param(catalog_pb2.GetUnitRequest(slug="ba-thuoc", unit_id="000.00.12.H56"), id="by-both"),
])
def test_get_unit(api, request_):
    unit = api.GetUnit(request_, timeout=10).unit
    assert (unit.slug, unit.unit_id, unit.name, unit.level, unit.parent) == (
        "ba-thuoc", "000.00.12.H56", "UBND huyện Bá Thước", DISTRICT, "thanh-hoa")


def test_the_province_has_no_parent(api):
    assert api.GetUnit(catalog_pb2.GetUnitRequest(slug="thanh-hoa"), timeout=10).unit.parent == ""


# -- errors ---------------------------------------------------------------------------------------


def first_token(api, request: catalog_pb2.ListProceduresRequest) -> str:
    return api.ListProcedures(request, timeout=10).next_page_token


@pytest.mark.parametrize("method, request_, field", [
    pytest.param("GetProcedure", catalog_pb2.GetProcedureRequest(), "code", id="procedure-without-code"),
    pytest.param("GetProcedure", catalog_pb2.GetProcedureRequest(code="1.004616", version=-1), "version",
                 id="negative-version"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(page_size=-1), "page_size",
                 id="negative-page-size"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(page_token="not-a-token"), "page_token",
                 id="garbage-page-token"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(page_token="eyJhZnRlciI6IDF9"), "page_token",
                 id="token-of-the-wrong-shape"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(level=9), "level", id="level-out-of-range"),
    pytest.param("ListUnits", catalog_pb2.ListUnitsRequest(page_size=-5), "page_size", id="units-negative-page-size"),
    pytest.param("ListUnits", catalog_pb2.ListUnitsRequest(page_token="%%%"), "page_token", id="units-bad-token"),
    pytest.param("GetUnit", catalog_pb2.GetUnitRequest(), "slug", id="unit-without-slug-or-id"),
    pytest.param("GetUnit", catalog_pb2.GetUnitRequest(slug="bim-son", unit_id="000.00.12.H56"), "unit_id",
                 id="slug-and-id-of-different-units"),
])
def test_bad_requests_are_invalid_argument_naming_the_field(api, method, request_, field):
    error = rpc_error(getattr(api, method), request_)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: "), error.details()


def test_a_page_token_is_for_the_filters_it_was_issued_with(api):
    token = first_token(api, catalog_pb2.ListProceduresRequest(level=COMMUNE, page_size=2))
    assert token
    # The same filters go on; other filters, or the token on the unit list, are refused.
    assert api.ListProcedures(catalog_pb2.ListProceduresRequest(level=COMMUNE, page_size=2, page_token=token),
                              timeout=10).procedures
    for call, request in [
        (api.ListProcedures, catalog_pb2.ListProceduresRequest(level=DISTRICT, page_token=token)),
        (api.ListProcedures, catalog_pb2.ListProceduresRequest(page_token=token)),
        (api.ListUnits, catalog_pb2.ListUnitsRequest(level=COMMUNE, page_token=token)),
    ]:
        error = rpc_error(call, request)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().startswith("page_token: was issued for a request with other filters"), error.details()


@pytest.mark.parametrize("method, request_, named", [
    pytest.param("GetProcedure", catalog_pb2.GetProcedureRequest(code="9.999999"), "9.999999",
                 id="unknown-procedure"),
    pytest.param("GetProcedure", catalog_pb2.GetProcedureRequest(code="1.004616", version=7), "no version 7",
                 id="unknown-version"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(unit="hai-phong"), "hai-phong",
                 id="procedures-of-an-unknown-unit"),
    pytest.param("ListProcedures", catalog_pb2.ListProceduresRequest(sector="y-te"), "y-te",
                 id="procedures-of-an-unknown-sector"),
    pytest.param("ListUnits", catalog_pb2.ListUnitsRequest(parent="hai-phong"), "hai-phong",
                 id="children-of-an-unknown-unit"),
    pytest.param("GetUnit", catalog_pb2.GetUnitRequest(slug="hai-phong"), "hai-phong", id="unknown-slug"),
    pytest.param("GetUnit", catalog_pb2.GetUnitRequest(unit_id="000.00.99.H56"), "000.00.99.H56",
                 id="unknown-identifier"),
])
def test_unknown_things_are_not_found(api, method, request_, named):
    error = rpc_error(getattr(api, method), request_)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert named in error.details()


# -- pagination on its own -----------------------------------------------------------------------


def test_page_sizes_default_to_50_and_are_capped_at_200():
    items = [f"{n:04d}" for n in range(450)]

    def page(size: int, token: str = "") -> tuple[list[str], str]:
        return paginate(items, str, str, size, token, ("test",))

    assert len(page(0)[0]) == 50
    first, token = page(1000)
    assert first == items[:200]
    second, token = page(1000, token)
    assert second == items[200:400]
    third, token = page(1000, token)
    assert (third, token) == (items[400:], "")
    with pytest.raises(InvalidArgument):
        paginate(items, str, str, 10, page(10)[1], ("other",))
