"""SigningWork with fakes for its ports: which failures are retried and which park the message."""

from __future__ import annotations

import pytest

from motcua.errors import InvalidArgument, Unavailable
from motcua.messaging.consuming import PermanentFailure
from motcua.objects import StorageUnavailable
from signing.application.signing_work import SigningWork

BODY = {"signing_request_id": "sr-1", "code": "000.00.06.H56-261126-0001", "area": "bim-son",
        "dossier_id": "d-1", "receiving_unit": "bim-son",
        "document": {"key": "routing/d-1/ab", "sha256": "ab" * 32, "size": 8, "media_type": "application/pdf"}}


class NoRecords:
    def collection(self, schema):
        return self

    def get(self, key):
        return None  # never signed before


def work_failing_with(error: Exception) -> SigningWork:
    def sign_document(request):
        raise error

    return SigningWork(NoRecords(), outbox=None, sign_document=sign_document, official_id="official",
                       seal_id="seal")


@pytest.mark.parametrize("error", [
    StorageUnavailable("127.0.0.1:8333", "MaxRetryError"),  # the draft cannot be read, the result not stored
    Unavailable("the HSM is out of reach"),
], ids=type)
def test_an_unavailable_dependency_is_retried_not_parked(error):
    """Regression (issue 9): signing turned every DomainError into PermanentFailure, so an S3
    outage while signing parked the work in signing.<area>.dlq on its first try."""
    with pytest.raises(Unavailable) as excinfo:
        work_failing_with(error).sign(BODY, "")
    assert not isinstance(excinfo.value, PermanentFailure)


def test_a_document_that_cannot_be_signed_is_parked():
    with pytest.raises(PermanentFailure):
        work_failing_with(InvalidArgument("document", "is not a PDF")).sign(BODY, "")
