"""Least privilege at the gRPC edge: mutual TLS names the calling agency (its client certificate's
common name) and the access list says which methods and areas it may use. The server is the
kernel's build_server with real TLS; the clients are stock grpcio channels with client certificates
issued by a test CA (motcua_dev.testing.MutualTlsPki) (and one from a CA the server does not trust)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import yaml
from motcua_dev.testing import MutualTlsPki

from motcua.access import AccessList, AccessListError, require_area
from motcua.errors import PermissionDenied, Unauthenticated
from motcua.grpcsupport import ServerTls, build_server, revoked_serials, server_security
from motcua.intake.v1 import intake_pb2, intake_pb2_grpc
from motcua.settings import PlatformSettings

SERVICE = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name
GET = f"/{SERVICE}/GetDossier"
TRACK = f"/{SERVICE}/TrackDossier"
SUBMIT = f"/{SERVICE}/SubmitDossier"
ACCESS = {
    "public": [f"{SERVICE}/TrackDossier"],
    "agencies": {
        "ubnd-bim-son": {"methods": [f"{SERVICE}/GetDossier", f"{SERVICE}/TrackDossier"], "areas": ["bim-son"]},
        "ubnd-ba-thuoc": {"methods": [f"{SERVICE}/*"], "areas": ["ba-thuoc"]},
        "cong-dvc-quoc-gia": {"methods": ["*"], "areas": ["*"]},
    },
}


# -- the access list on its own ------------------------------------------------------------------


@pytest.mark.parametrize("agency, method, outcome", [
    ("ubnd-bim-son", GET, "ok"),
    ("ubnd-bim-son", SUBMIT, PermissionDenied),
    ("ubnd-ba-thuoc", SUBMIT, "ok"),
    ("cong-dvc-quoc-gia", "/motcua.catalog.v1.CatalogService/ListProcedures", "ok"),
    ("so-tu-phap", GET, PermissionDenied),  # a valid certificate, not on the list
    ("so-tu-phap", TRACK, "ok"),  # public
    (None, GET, Unauthenticated),
    (None, TRACK, "ok"),
    (None, "/grpc.health.v1.Health/Check", "ok"),
])
def test_authorize(agency, method, outcome):
    access = AccessList.from_dict(ACCESS)
    if outcome == "ok":
        access.authorize(agency, method)
    else:
        with pytest.raises(outcome):
            access.authorize(agency, method)


@pytest.mark.parametrize("data, where", [
    ([], "must be a mapping"),
    ({"agencies": {}, "extra": 1}, "unknown key(s) extra"),
    ({"agencies": {"a": {"methods": "*", "areas": ["*"]}}}, "agencies.a.methods: must be a list"),
    ({"agencies": {"a": {"methods": ["*"]}}}, "agencies.a.areas: must be a list"),
    ({"agencies": {"a": {"methods": ["*"], "areas": ["*"], "roles": []}}}, "agencies.a: must be a mapping"),
    ({"public": [""]}, "public: must be a list of non-empty strings"),
])
def test_a_malformed_access_list_names_the_place(data, where, tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(AccessListError) as excinfo:
        AccessList.load(path)
    assert str(excinfo.value).startswith(f"{path}: ")
    assert where in str(excinfo.value)


def test_settings_refuse_an_access_list_without_mutual_tls(tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text("agencies: {}\n")
    with pytest.raises(ValueError, match="needs mutual TLS"):
        server_security(PlatformSettings.load(grpc_access_list=path))
    with pytest.raises(ValueError, match="needs MOTCUA_GRPC_TLS_CERT"):
        server_security(PlatformSettings.load(grpc_tls_cert=path))
    assert server_security(PlatformSettings.load()) == (None, None)


# -- through a real mutual-TLS server --------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> MutualTlsPki:
    pki = MutualTlsPki.create(("ubnd-bim-son", "ubnd-ba-thuoc", "so-tu-phap"))
    pki.issue_rogue("rogue", cn="ubnd-bim-son")
    return pki


class Servicer(intake_pb2_grpc.IntakeServiceServicer):
    """Every dossier is of bim-son here: GetDossier checks the caller's areas as intake's does."""

    def GetDossier(self, request, context):
        require_area("bim-son")
        return intake_pb2.GetDossierResponse(dossier=intake_pb2.Dossier(code=request.code, receiving_unit="bim-son"))

    def TrackDossier(self, request, context):
        return intake_pb2.TrackDossierResponse(code=request.code)


@pytest.fixture(scope="module")
def port(pki: MutualTlsPki) -> Iterator[int]:
    servicer = Servicer()
    server, port, _ = build_server(
        [SERVICE], lambda s: intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, s), "127.0.0.1", 0,
        reflection_on=False, workers=4, tls=ServerTls(pki.server_cert, pki.server_key, pki.ca),
        access_list=AccessList.from_dict(ACCESS))
    server.start()
    yield port
    server.stop(grace=None).wait()


def stub(pki: MutualTlsPki, port: int, agency: str | None) -> intake_pb2_grpc.IntakeServiceStub:
    cert, key = pki.clients[agency] if agency else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca, private_key=key, certificate_chain=cert)
    channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials,
                                  options=[("grpc.ssl_target_name_override", "localhost")])
    return intake_pb2_grpc.IntakeServiceStub(channel)


@pytest.mark.parametrize("agency, call, code", [
    ("ubnd-bim-son", "GetDossier", grpc.StatusCode.OK),
    ("ubnd-ba-thuoc", "GetDossier", grpc.StatusCode.PERMISSION_DENIED),  # its method, not its district
    ("so-tu-phap", "GetDossier", grpc.StatusCode.PERMISSION_DENIED),  # not on the list
    ("so-tu-phap", "TrackDossier", grpc.StatusCode.OK),  # public
    ("ubnd-bim-son", "SubmitDossier", grpc.StatusCode.PERMISSION_DENIED),  # not its method
    ("rogue", "TrackDossier", grpc.StatusCode.UNAVAILABLE),  # certificate of an untrusted CA: no handshake
    (None, "TrackDossier", grpc.StatusCode.UNAVAILABLE),  # no certificate: no handshake
])
def test_mutual_tls_and_the_access_list(pki: MutualTlsPki, port: int, agency, call, code):
    request = {"GetDossier": intake_pb2.GetDossierRequest(code="000.00.06.H56-261126-0001"),
               "TrackDossier": intake_pb2.TrackDossierRequest(code="000.00.06.H56-261126-0001"),
               "SubmitDossier": intake_pb2.SubmitDossierRequest(request_id="r-12345678")}[call]
    method = getattr(stub(pki, port, agency), call)
    if code is grpc.StatusCode.OK:
        assert method(request, timeout=10).ByteSize() > 0
        return
    with pytest.raises(grpc.RpcError) as excinfo:
        method(request, timeout=10)
    assert excinfo.value.code() is code
    if code is grpc.StatusCode.PERMISSION_DENIED:
        assert agency in excinfo.value.details()


def test_a_revocation_list_is_read_only_when_the_client_ca_signed_it():
    pki, other = MutualTlsPki.create(("a", "b")), MutualTlsPki.create(("a",))
    listed = revoked_serials(pki.crl("a"), pki.ca)
    assert len(listed) == 1 and revoked_serials(pki.crl(), pki.ca) == frozenset()
    with pytest.raises(ValueError, match="not signed by the client CA"):
        revoked_serials(other.crl("a"), pki.ca)  # another CA's list (or a forged one) stops nobody
    with pytest.raises(ValueError, match="no PEM X509 CRL"):
        revoked_serials(pki.ca, pki.ca)  # a wrong file is not an empty list
