"""The signing domain (pure Python): requests, results, the signing-order rule and its errors."""

from .errors import AlreadySigned, NotAPdf, SigningOrderViolation, SigningRefused, UnknownSigner
from .model import (
    PDF_MEDIA_TYPE,
    AppliedSignature,
    SealRequest,
    SignatureReport,
    SignedDocument,
    SignedPdf,
    SignerRef,
    SignerRole,
    SigningRequest,
    check_document_ref,
    check_pdf_bytes,
    check_signing_order,
)

__all__ = [
    "PDF_MEDIA_TYPE",
    "AlreadySigned",
    "AppliedSignature",
    "NotAPdf",
    "SealRequest",
    "SignatureReport",
    "SignedDocument",
    "SignedPdf",
    "SignerRef",
    "SignerRole",
    "SigningOrderViolation",
    "SigningRefused",
    "SigningRequest",
    "UnknownSigner",
    "check_document_ref",
    "check_pdf_bytes",
    "check_signing_order",
]
