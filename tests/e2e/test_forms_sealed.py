"""Every form the platform issues (01, 02, 03, 04, 05, 06 and the stop notice) sealed for real:
rendered by intake's and routing's own renderers, sealed through the signing api as a process
(``SigningService.SealDocument``, keys in a SoftHSM2 token, certificates, OCSP and the TSA of the
development PKI over HTTP) by the client the services use (:class:`motcua.sealing.SealingClient`),
then checked by two validators: pyHanko's (signing's own ``validate_pdf``) and poppler's
``pdfsig`` (trusting the dev root: valid and trusted). One signing api for the module; every form sealed once.

Also the refusals: a unit without a seal (FAILED_PRECONDITION naming it), bytes that are not a
PDF (INVALID_ARGUMENT), a form already sealed (INVALID_ARGUMENT), and the signing api out of
reach (Unavailable: the caller's message is retried, nothing unsealed is stored).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from motcua_dev.devstack import Stack
from motcua_dev.harness import pdfsig
from motcua_dev.infra import free_port
from motcua_dev.pki import dev_nss_trust_store
from motcua_dev.platform import api_spec
from motcua_dev.signing_env import signing_environment
from motcua_dev.testing import S3Endpoint

from intake.adapters.forms import ReceiptData, RefusalData, render_receipt, render_refusal
from motcua.errors import FailedPrecondition, InvalidArgument, Unavailable
from motcua.sealing import SealingClient
from motcua.worktime import VN_TZ
from routing.adapters.drafts import (
    render_apology,
    render_control_slip,
    render_stop_notice,
    render_supplement_request,
)
from routing.adapters.registers import register_pdf
from routing.application.register import RegisterPage
from routing.domain.control_slip import ControlSlip, SlipRow
from routing.domain.kpi766 import Period
from routing.domain.register import RegisterRow
from signing.adapters.pdf import validate_pdf

pytestmark = pytest.mark.e2e

CODE = "000.00.06.H56-261125-0361"
UNIT = "phuong-ba-dinh"  # a commune-level unit: its own seal (every catalog unit's is enrolled)
AT = dt.datetime(2026, 11, 25, 9, 30, tzinfo=VN_TZ)
LATER = AT + dt.timedelta(days=10)


def forms() -> dict[str, bytes]:
    """Each form kind, rendered as the services render it (hand-made values)."""
    receipt = ReceiptData(
        unit_name="Bộ phận Tiếp nhận và Trả kết quả UBND Phường Ba Đình", code=CODE, applicant_name="Nguyễn Thị Hương",
        procedure_name="Cấp Giấy phép xây dựng", procedure_code="1.004616",
        components=(("Đơn đề nghị cấp giấy phép xây dựng", 1, 0),), duration="15 ngày làm việc", received_at=AT,
        appointment_at=LATER, lookup_url="https://dichvucong.thanhhoa.gov.vn/tra-cuu/", official_name="Lê Văn Minh",
        place="Thanh Hóa")
    refusal = RefusalData(
        unit_name="Bộ phận Tiếp nhận và Trả kết quả UBND Phường Ba Đình", applicant_name="Nguyễn Thị Hương",
        procedure_name="Cấp Giấy phép xây dựng", procedure_code="1.004616", reasons=("Hồ sơ thiếu bản vẽ.",),
        refused_at=AT, official_name="Lê Văn Minh", place="Thanh Hóa", code=CODE)
    unit = "UBND Phường Ba Đình"
    slip = ControlSlip(code=CODE, procedure_code="1.004616", receiving_unit=UNIT, received_at=AT, due_at=LATER,
                       status=10, rows=(SlipRow(0, "Thẩm định", UNIT, "Lê Văn Minh", "van-phong-dang-ky-dat-dai", AT,
                                                LATER, LATER - dt.timedelta(days=1), "early"),))
    row = RegisterRow(code=CODE, procedure_code="1.004616", procedure_name="Cấp Giấy phép xây dựng",
                      applicant_name="Nguyễn Thị Hương", applicant_contact="Số 12 phố Lê Lai", deciding_unit=unit,
                      received_at=AT, due_at=LATER, sent_at=AT, result_at=None, returned_at=None, status=4, note="")
    page = RegisterPage(UNIT, Period(AT.date(), AT.date()), [row], 1, "")
    return {
        "01": render_receipt(receipt),
        "02": render_supplement_request(code=CODE, procedure_code="1.004616", procedure_name="Cấp Giấy phép xây dựng",
                                        unit=unit, received_at=AT, reason="Thiếu bản vẽ", components=("Bản vẽ",),
                                        deadline=LATER, official="Lê Văn Minh", issued_at=AT),
        "03": render_refusal(refusal),
        "04": render_apology(code=CODE, procedure_code="1.004616", unit=unit, received_at=AT, previous_due_at=AT,
                             new_due_at=LATER, reason="Chờ ý kiến", issued_at=AT),
        "05": render_control_slip(slip, dated=LATER),
        "06": register_pdf(page, unit),
        "dung": render_stop_notice(code=CODE, procedure_code="1.004616", unit=unit, received_at=AT,
                                   reason="Quá hạn bổ sung", issued_at=AT),
    }


@pytest.fixture(scope="module")
def signing_api(tmp_path_factory, s3_endpoint: S3Endpoint) -> Iterator[tuple[str, dict[str, str]]]:
    """The signing api as a process over a token with the roster enrolled; yields its address and
    the signing environment (MOTCUA_TRUST_ROOTS...)."""
    workdir = tmp_path_factory.mktemp("sealing")
    env = {"MOTCUA_DATA_DIR": str(workdir / "data"), **s3_endpoint.env("sealing")}
    with signing_environment(workdir / "pki", workdir / "softhsm", env=env) as signing:
        env.update(signing)
        port = free_port()
        with Stack([api_spec("signing", env, port)], workdir / "logs") as stack:
            stack.wait_ready(timeout=60)
            yield f"127.0.0.1:{port}", env


@pytest.fixture(scope="module")
def sealer(signing_api) -> Iterator[SealingClient]:
    client = SealingClient(signing_api[0])
    yield client
    client.close()


@pytest.fixture(scope="module")
def sealed(sealer) -> dict[str, bytes]:
    return {form: sealer(pdf, UNIT, f"Mẫu {form} {CODE}") for form, pdf in forms().items()}


def test_every_form_carries_the_units_invisible_seal_valid_for_pyhanko_and_pdfsig(sealed, signing_api, tmp_path):
    roots_file = Path(signing_api[1]["MOTCUA_TRUST_ROOTS"])
    roots = [roots_file.read_bytes()]
    nss = dev_nss_trust_store(roots_file.parent, tmp_path / "nss")  # a relying party trusting the dev root
    assert set(sealed) == {"01", "02", "03", "04", "05", "06", "dung"}
    for form, data in sealed.items():
        (report,) = validate_pdf(data, roots)
        assert report.field_name == "Sig_Seal", form
        assert report.verdict == "valid" and report.ok, (form, report.problems)
        assert report.level == "B-LT", form  # the settings' level: revocation data embedded, no LTA
        assert report.signer_name == "UBND phường Ba Đình", form  # the commune's own seal
        path = tmp_path / f"{form}.pdf"
        path.write_bytes(data)
        (sig,) = pdfsig(path, "-nssdir", nss)
        assert sig["Signature Validation"] == "Signature is Valid.", (form, sig)
        assert sig["Certificate Validation"] == "Certificate is Trusted.", (form, sig)
        assert sig["Signature Type"] == "ETSI.CAdES.detached", form
        assert sig["Signer Certificate Common Name"] == "UBND phường Ba Đình", form
    # invisible: the signature field has no widget area on the page (no stamp image)
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    (embedded,) = PdfFileReader(BytesIO(sealed["01"])).embedded_signatures
    rect = [float(v) for v in embedded.sig_field.get("/Rect", [0, 0, 0, 0])]
    assert rect[2] - rect[0] == 0 and rect[3] - rect[1] == 0


def test_refusals_are_clear(sealer, sealed):
    form = forms()["04"]
    with pytest.raises(FailedPrecondition, match="xa-khong-co-dau"):
        sealer(form, "xa-khong-co-dau", "Mẫu 04")  # no seal enrolled for this unit
    with pytest.raises(InvalidArgument, match="PDF"):
        sealer(b"not a pdf at all", UNIT)
    with pytest.raises(InvalidArgument, match="already"):
        sealer(sealed["04"], UNIT)
    with pytest.raises(InvalidArgument, match="unit"):
        sealer(form, "Not A Slug!")


def test_signing_api_out_of_reach_is_unavailable():
    client = SealingClient(f"127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(Unavailable):
        client(b"%PDF-1.7\n%%EOF", UNIT)
    client.close()
