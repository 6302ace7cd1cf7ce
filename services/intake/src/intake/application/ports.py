"""What intake's use cases need from outside, injected by the entrypoints (the application never
imports its adapters): how dossiers and uploads are stored, and how forms are rendered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from intake.domain.forms import ReceiptData, RefusalData
from motcua.store.port import Mapper


@dataclass(frozen=True)
class Records:
    """The stored forms of intake's aggregates (``intake.adapters.records.RECORDS``)."""

    dossiers: Mapper  # Dossier ⇄ document
    uploads: Mapper  # Upload ⇄ document


@dataclass(frozen=True)
class FormRenderer:
    """The desk's forms as PDF bytes (``intake.adapters.forms.PDF_FORMS``)."""

    receipt: Callable[[ReceiptData], bytes]  # form 01
    refusal: Callable[[RefusalData], bytes]  # form 03
