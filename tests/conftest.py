"""Fixtures of the cross-service tests: the real RabbitMQ (a private vhost per platform), a real
S3 server (SeaweedFS) and the services started as processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from motcua_dev.harness import Platform, running_platform
from motcua_dev.testing import S3Endpoint


@pytest.fixture(scope="module")
def platform(tmp_path_factory, amqp_uri: str, s3_endpoint: S3Endpoint) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("platform")
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    with running_platform(workdir, amqp_uri, s3_endpoint.env(bucket)) as running:
        yield running
