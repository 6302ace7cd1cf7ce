"""The archive's adapters as the settings build them: the second copy on its own endpoint."""

from archive.config import ArchiveSettings
from archive.entrypoints import bootstrap


def test_the_second_copy_goes_to_its_own_endpoint_and_bucket_when_set():
    same = bootstrap.vaults(ArchiveSettings.load(s3_endpoint="10.0.0.1:9000"))
    assert [(v.name, v.store.endpoint, v.store.bucket, v.mode) for v in same] == [
        ("primary", "10.0.0.1:9000", "motcua-archive", "GOVERNANCE"),
        ("copy", "10.0.0.1:9000", "motcua-archive-copy", "GOVERNANCE")]
    apart = bootstrap.vaults(ArchiveSettings.load(
        s3_endpoint="10.0.0.1:9000", archive_copy_s3_endpoint="10.0.9.9:9000", archive_copy_bucket="dr-archive",
        archive_lock_mode="COMPLIANCE"))
    assert [(v.store.endpoint, v.store.bucket, v.mode) for v in apart] == [
        ("10.0.0.1:9000", "motcua-archive", "COMPLIANCE"), ("10.0.9.9:9000", "dr-archive", "COMPLIANCE")]
    assert bootstrap.timestamper(ArchiveSettings.load(tsa_url=None)) is None
