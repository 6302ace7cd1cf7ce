"""Builds an archival package as a BagIt bag (RFC 8493, the ``bagit`` library) packed in a tar
file on disk, deterministically: payload and tag files in sorted order, fixed modification time
(the dossier's return), owner 0/0, fixed modes, a bag-info without today's date. The same dossier
gives the same bytes, so a retry after a crash finds the copy it wrote before under the same key.

Nothing is held in memory: documents are streamed from S3 into the bag directory, the tar is
written to a temporary file and hashed from there (the caller uploads it by multipart)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import bagit

from archive.domain.package import BagSpec, BuiltPackage, PackageFile

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
BAG_PREFIX = "motcua-bag-"  # a package being built: a temporary directory of this name
_BUILDING = ".building"  # in it, the file its builder holds locked until it is done
_UNLOCKED_GRACE_S = 60.0  # a directory whose lock file is not there yet: just made, or abandoned
_PDF_PAGE = re.compile(rb"/Type\s{0,16}/Page(?![a-zA-Z])")
_OVERLAP = 64  # longer than any match


@contextlib.contextmanager
def build_package(spec: BagSpec, read: Callable[[PackageFile], Iterable[bytes]],
                  workdir: str | None = None) -> Iterator[BuiltPackage]:
    """The packed, validated bag as a temporary tar file for the duration of the context."""
    # ignore_cleanup_errors: remove_abandoned_bags may take the directory once the lock is let go
    with tempfile.TemporaryDirectory(prefix=BAG_PREFIX, dir=workdir, ignore_cleanup_errors=True) as tmp, \
            _building(Path(tmp)):
        root = Path(tmp) / spec.name
        root.mkdir()
        pages: dict[str, int | None] = {}
        for file in spec.files:
            target = root / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for chunk in read(file):
                    out.write(chunk)
            pages[file.path] = page_count(target, file.media_type)
        for path, document in sorted(spec.metadata(pages).items()):
            if not path.startswith("data/"):
                raise ValueError(f"metadata goes under data/, not {path!r}")
            target = root / path.removeprefix("data/")  # make_bag moves the payload into data/
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n")
        bag = bagit.make_bag(str(root), bag_info=dict(spec.info), checksums=["sha256"])
        bag.validate()  # every payload file against the manifest
        manifest = (root / "manifest-sha256.txt").read_bytes()
        tar_path = Path(tmp) / f"{spec.name}.tar"
        digest, size = write_tar(root, spec.name, tar_path, int(spec.mtime.timestamp()))
        yield BuiltPackage(tar_path, digest, size, hashlib.sha256(manifest).hexdigest())


@contextlib.contextmanager
def _building(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s lock file while the package is built in it. The kernel lets go of the
    lock when this process ends, however it ends (``kill -9``, out of memory), which is how
    :func:`remove_abandoned_bags` tells a live build from a dead one, across restarts of a
    container and whatever pids the processes had."""
    fd = os.open(directory / _BUILDING, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a file just made: nobody else holds it
        yield
    finally:
        os.close(fd)


def remove_abandoned_bags(workdir: str | os.PathLike[str] | None = None) -> list[str]:
    """Remove the packages a dead process was building in ``workdir`` (the system's temporary
    directory by default), and return their names. Why: a worker killed while building leaves its
    bag behind (the documents and the tar: tens of megabytes), and a pod's /tmp is an emptyDir with
    a size limit that outlives container restarts; a few such kills and the pod is evicted. Run at
    the archive worker's start; a build in progress in another process is left alone."""
    removed = []
    for directory in Path(workdir or tempfile.gettempdir()).glob(BAG_PREFIX + "*"):
        with contextlib.suppress(FileNotFoundError):  # its builder finished meanwhile
            if directory.is_dir() and _abandoned(directory):
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
    if removed:
        log.warning("removed packages abandoned mid-build", extra={"count": len(removed), "bags": removed})
    return removed


def _abandoned(directory: Path) -> bool:
    try:
        fd = os.open(directory / _BUILDING, os.O_RDWR)
    except FileNotFoundError:  # made a moment ago, its lock not taken yet; or left before that
        return time.time() - directory.stat().st_mtime > _UNLOCKED_GRACE_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its builder is alive
    finally:
        os.close(fd)  # closing lets go of a lock just taken
    return True


def write_tar(root: Path, arcname: str, target: Path, mtime: int) -> tuple[str, int]:
    """A reproducible POSIX tar of ``root`` (sorted; fixed times, owners, modes); its SHA-256 and
    size."""
    with tarfile.open(target, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, name in _sorted_tree(root, arcname):
            info = tar.gettarinfo(str(path), arcname=name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with open(path, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    digest = hashlib.sha256()
    with open(target, "rb") as packed:
        while chunk := packed.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest(), target.stat().st_size


def _sorted_tree(root: Path, arcname: str) -> Iterator[tuple[Path, str]]:
    yield root, arcname
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        prefix = arcname if rel == "." else f"{arcname}/{rel}"
        for name in sorted(dirnames + filenames):
            if name in dirnames:
                continue
            yield Path(dirpath) / name, f"{prefix}/{name}"
        for name in dirnames:
            yield Path(dirpath) / name, f"{prefix}/{name}"


def page_count(path: Path, media_type: str) -> int | None:
    """Pages of a PDF (its page objects counted), 1 for an image, None otherwise."""
    if media_type.startswith("image/"):
        return 1
    if media_type != "application/pdf":
        return None
    count, tail = 0, b""
    with open(path, "rb") as pdf:  # chunk by chunk: a match near a chunk's end waits for the next
        while chunk := pdf.read(CHUNK):
            window = tail + chunk
            keep = max(len(window) - _OVERLAP, 0)
            count += sum(1 for m in _PDF_PAGE.finditer(window) if m.end() <= keep)
            tail = window[keep:]
    count += sum(1 for _ in _PDF_PAGE.finditer(tail))
    return count or None


def unpack(packed: Path, into: Path) -> Path:
    """Extract a package (for validation): the bag directory."""
    with tarfile.open(packed) as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    return into / names[0].split("/")[0]


def validate_packed(packed: Path) -> None:
    """Unpack and validate the bag (bagit.BagValidationError / BagError when it does not hold)."""
    with tempfile.TemporaryDirectory(prefix="motcua-check-") as tmp:
        bagit.Bag(str(unpack(packed, Path(tmp)))).validate()
        shutil.rmtree(tmp, ignore_errors=True)


def validate_problem(packed: Path) -> str | None:
    """Why the packed bag does not validate, None when it does."""
    try:
        validate_packed(packed)
    except (bagit.BagError, tarfile.TarError, OSError, IndexError) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None
