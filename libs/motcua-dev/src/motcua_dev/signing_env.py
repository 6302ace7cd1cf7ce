"""What the signing service needs on a development machine or in a test platform: a SoftHSM2
token, the development PKI served over HTTP, and every catalog unit's seal and the roster's
officials enrolled (``python -m signing enroll-roster``: keys generated in the token, certificates
from the CA). ``make run`` and the e2e harness use :func:`signing_environment`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from motcua_dev.hsm import ensure_token
from motcua_dev.pki import serving


@contextlib.contextmanager
def signing_environment(pki_dir: str | os.PathLike[str], token_dir: str | os.PathLike[str], port: int = 0,
                        env: Mapping[str, str] | None = None, enroll: bool = True,
                        label: str = "motcua-dev") -> Iterator[dict[str, str]]:
    """Serve the PKI of ``pki_dir`` on ``port`` (0: a free one) while the block runs; yield the
    settings (and SOFTHSM2_CONF) the signing processes need, after enrolling the roster."""
    token = ensure_token(token_dir, label=label)
    with serving(pki_dir, port=port) as pki:
        settings = {**token.env(), **pki.env()}
        if enroll:
            subprocess.run([sys.executable, "-m", "signing", "enroll-roster"], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, **(env or {}), **settings})
        yield settings


def main() -> int:  # pragma: no cover - a helper for a shell: `python -m motcua_dev.signing_env`
    with signing_environment(Path("var/pki"), Path("var/softhsm"), port=8790) as settings:
        for key, value in settings.items():
            print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
