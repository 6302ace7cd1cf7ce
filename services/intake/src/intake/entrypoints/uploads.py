"""UploadDocument's stream as the use case sees it: the header first, then the chunks, passed on one
at a time as grpcio delivers them (never gathered)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from intake.application.uploads import Uploads
from motcua.errors import InvalidArgument
from motcua.intake.v1 import intake_pb2


def upload_document(uploads: Uploads,
                    request_iterator: Iterable[intake_pb2.UploadDocumentRequest]) -> intake_pb2.UploadDocumentResponse:
    requests = iter(request_iterator)
    first = next(requests, None)
    if first is None:
        raise InvalidArgument("header", "the stream is empty: send the header, then the chunks")
    if first.WhichOneof("part") != "header":
        raise InvalidArgument("header", "the first message must be the header (request_id, media_type), "
                                        "then the chunks")
    header = first.header
    upload = uploads.receive(header.request_id, header.media_type, header.sha256, _chunks(requests))
    return intake_pb2.UploadDocumentResponse(upload_id=upload.id, sha256=upload.sha256, size=upload.size,
                                             media_type=upload.media_type)


def _chunks(requests: Iterator[intake_pb2.UploadDocumentRequest]) -> Iterator[bytes]:
    for number, request in enumerate(requests, start=2):
        part = request.WhichOneof("part")
        if part == "chunk":
            yield request.chunk
        elif part == "header":
            raise InvalidArgument("header", f"message {number} is a second header: only the first message "
                                            "is the header, the others are chunks")
        else:
            raise InvalidArgument("chunk", f"message {number} is empty: set chunk")
