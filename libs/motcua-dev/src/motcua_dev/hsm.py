"""A SoftHSM2 token per environment (development and tests): the PKCS#11 module the signing
service talks to, as a real HSM or USB token would be in production.

``ensure_token(directory)`` makes, once, ``directory/softhsm2.conf`` (tokens under
``directory/tokens``), a random user PIN in ``directory/pin`` (0600; never printed) and an
initialised token labelled ``label``; it returns the settings that point signing at it.
``SOFTHSM2_CONF`` must be in the environment of every process that loads the module: the
returned ``env()`` has it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULE_PATHS = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")
DEFAULT_DIR = Path("var/softhsm")
DEFAULT_LABEL = "motcua-dev"


def softhsm_module() -> str | None:
    return next((p for p in MODULE_PATHS if Path(p).exists()), None)


@dataclass(frozen=True)
class Token:
    conf: Path
    module: str
    label: str
    pin_file: Path

    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf), "MOTCUA_PKCS11_MODULE": self.module,
                "MOTCUA_PKCS11_TOKEN": self.label, "MOTCUA_PKCS11_PIN_FILE": str(self.pin_file)}


def ensure_token(directory: str | os.PathLike[str] = DEFAULT_DIR, label: str = DEFAULT_LABEL) -> Token:
    module = softhsm_module()
    if module is None or shutil.which("softhsm2-util") is None:
        raise SystemExit("SoftHSM2 is not installed: run `make setup` (Debian package softhsm2)")
    directory = Path(directory).resolve()
    tokens = directory / "tokens"
    tokens.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                        "slots.removable = false\n")
    pin_file = directory / "pin"
    if not pin_file.exists():
        fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(8))
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    shown = subprocess.run(["softhsm2-util", "--show-slots"], env=env, capture_output=True, text=True, check=True)
    labels = {line.split(":", 1)[1].strip() for line in shown.stdout.splitlines() if line.strip().startswith("Label:")}
    if label not in labels:
        pin = pin_file.read_text().strip()
        so_pin = secrets.token_hex(8)  # nobody needs the SO PIN of a development token
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
                       env=env, capture_output=True, text=True, check=True)
    return Token(conf=conf, module=module, label=label, pin_file=pin_file)
