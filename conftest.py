"""Session fixtures shared by every test directory, so one test run starts at most one SeaweedFS
(or reuses the S3 service answering on MOTCUA_S3_ENDPOINT) and checks RabbitMQ once."""

from __future__ import annotations

import pytest

from motcua.testing import S3Endpoint, amqp_uri, object_store, s3_server  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: S3Endpoint) -> S3Endpoint:  # noqa: F811 - the fixture above
    return s3_server
