"""Operator CLI of the signing keys: ``python -m signing enroll|revoke|list|enroll-roster``.

Talks to the token of MOTCUA_PKCS11_MODULE / MOTCUA_PKCS11_TOKEN (PIN from MOTCUA_PKCS11_PIN_FILE)
and to the CA's enrollment API at MOTCUA_PKI_URL. A key is generated in the token (never leaves
it), the CA certifies its public key, the certificate is stored next to it.

    python -m signing enroll official sign-ba-thuoc --name "Hà Văn Bình" \\
        --title "Phó Chủ tịch UBND huyện" --unit-name "UBND huyện Bá Thước"
    python -m signing enroll seal ba-thuoc --unit-name "UBND huyện Bá Thước"
    python -m signing enroll seal ba-thuoc --csr-out ba-thuoc.csr   # another CA: a PKCS#10 request
    python -m signing import-cert seal:ba-thuoc ba-thuoc.pem         # ...and the certificate it issued
    python -m signing list        # expiry, and good/revoked/unknown/unreachable from OCSP
    python -m signing revoke official sign-ba-thuoc --reason key_compromise
    python -m signing enroll-roster services/signing/dev/roster.yaml   # every unit's seal + officials
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from motcua.errors import DomainError
from signing.adapters.keys import CaClient, Enrollment, Subject
from signing.adapters.token import TokenKeys, key_label
from signing.config import SigningSettings
from signing.domain import SignerRole

ROLES = {"official": SignerRole.PERSONAL, "seal": SignerRole.SEAL}
DEFAULT_ROSTER = Path(__file__).resolve().parents[3] / "dev" / "roster.yaml"


def _enrollment(settings: SigningSettings) -> Enrollment:
    keys = TokenKeys(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin_file)
    return Enrollment(keys, CaClient(settings.pki_url, settings.signing_timeout_s))


def _unit_names(settings: SigningSettings) -> dict[str, str]:
    from motcua.areas import catalog_files

    names = {}
    for file in catalog_files(settings.catalog_file):
        raw = yaml.safe_load(file.read_text("utf-8")) or {}
        for unit in raw.get("units") or []:
            if isinstance(unit, dict) and unit.get("slug") and unit.get("name"):
                names[unit["slug"]] = unit["name"]
    return names


def enroll_roster(enrollment: Enrollment, roster_file: Path, unit_names: dict[str, str], replace: bool = False,
                  out=sys.stdout) -> int:
    """Every unit's seal (named as in the catalog) and every official of the roster; idempotent."""
    roster = yaml.safe_load(roster_file.read_text("utf-8"))
    province = roster.get("province", "")
    count = 0
    for slug, name in sorted(unit_names.items()):
        e = enrollment.enroll(SignerRole.SEAL, slug, Subject(name, name, "", province), replace=replace)
        count += 1
        print(f"seal {slug}: {e.describe()} until {e.not_after:%Y-%m-%d}", file=out)
    for slug, officials in sorted((roster.get("officials") or {}).items()):
        if slug not in unit_names:
            raise SystemExit(f"{roster_file}: unit {slug!r} is not in the catalog")
        for o in officials:
            e = enrollment.enroll(SignerRole.PERSONAL, o["id"], Subject(o["name"], unit_names[slug],
                                                                        o.get("title", ""), province), replace=replace)
            count += 1
            print(f"official {o['id']}: {e.describe()} until {e.not_after:%Y-%m-%d}", file=out)
    return count


def write_csr(path: Path, der: bytes) -> None:
    from asn1crypto import pem

    path.write_bytes(pem.armor("CERTIFICATE REQUEST", der))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="generate a key in the token and have the CA certify it")
    enroll.add_argument("kind", choices=sorted(ROLES))
    enroll.add_argument("id", help="the official's id (routing's official_id) or the unit's slug")
    enroll.add_argument("--name", help="the official's full name (default for a seal: the unit's name)")
    enroll.add_argument("--title", default="", help="the official's title (chức vụ)")
    enroll.add_argument("--unit-name", help="the issuing body's name (default: from the catalog)")
    enroll.add_argument("--province", default="Thanh Hóa")
    enroll.add_argument("--days", type=int, help="certificate validity in days (default: the CA's)")
    enroll.add_argument("--replace", action="store_true", help="make a new key even if one is enrolled")
    enroll.add_argument("--csr-out", type=Path, metavar="FILE",
                        help="enroll with another CA: write the key's PKCS#10 request (PEM) to FILE instead of "
                        "asking the CA at MOTCUA_PKI_URL; then import-cert the certificate it issues")
    imported = sub.add_parser("import-cert", help="store the certificate a CA issued for a key made with --csr-out "
                              "(it must certify that key and chain to MOTCUA_TRUST_ROOTS)")
    imported.add_argument("label", help="the key's label: official:<id> or seal:<unit slug>")
    imported.add_argument("certificate", type=Path, help="PEM (the CA's chain may follow the certificate)")
    revoke = sub.add_parser("revoke", help="have the CA revoke an enrolled certificate")
    revoke.add_argument("kind", choices=sorted(ROLES))
    revoke.add_argument("id")
    revoke.add_argument("--reason", default="unspecified",
                        help="unspecified, key_compromise, affiliation_changed, superseded, cessation_of_operation")
    listing = sub.add_parser("list", help="the enrolled keys: certificate subject, expiry and revocation status "
                             "(asked of the OCSP responder in each certificate)")
    listing.add_argument("--timeout", type=float, help="seconds to wait for an OCSP responder "
                         "(default: MOTCUA_SIGNING_TIMEOUT_S)")
    roster = sub.add_parser("enroll-roster", help="every catalog unit's seal and the roster's officials")
    roster.add_argument("roster", nargs="?", type=Path, default=DEFAULT_ROSTER)
    roster.add_argument("--replace", action="store_true")
    args = parser.parse_args(argv)
    settings = SigningSettings.load()
    try:
        enrollment = _enrollment(settings)
        if args.command == "enroll":
            role = ROLES[args.kind]
            unit_name = args.unit_name or _unit_names(settings).get(args.id if role is SignerRole.SEAL else "", "")
            if not unit_name:
                parser.error("--unit-name is required (the issuing body's name)")
            name = args.name or (unit_name if role is SignerRole.SEAL else None)
            if not name:
                parser.error("--name is required for an official")
            subject = Subject(name, unit_name, args.title, args.province)
            if args.csr_out:
                write_csr(args.csr_out, enrollment.request(role, args.id, subject, replace=args.replace))
                print(f"{args.kind} {args.id}: key made in token {settings.pkcs11_token!r}, request written to "
                      f"{args.csr_out}; once the CA certifies it: python -m signing import-cert "
                      f"{key_label(role, args.id)} CERT.pem")
            else:
                e = enrollment.enroll(role, args.id, subject, days=args.days, replace=args.replace)
                print(f"{args.kind} {args.id}: {e.describe()} until {e.not_after:%Y-%m-%d}")
        elif args.command == "import-cert":
            if settings.trust_roots is None:
                parser.error("MOTCUA_TRUST_ROOTS must name the trusted roots (PEM) the certificate must chain to")
            try:
                issued, roots = args.certificate.read_bytes(), settings.trust_roots.read_bytes()
            except OSError as exc:
                parser.error(f"cannot read {exc.filename}: {exc.strerror}")
            e = enrollment.import_certificate(args.label, issued, roots, timeout=settings.signing_timeout_s)
            print(f"{args.label}: {e.describe()} until {e.not_after:%Y-%m-%d}")
        elif args.command == "revoke":
            e, at = enrollment.revoke(ROLES[args.kind], args.id, args.reason)
            print(f"{args.kind} {args.id}: {e.describe()} revoked at {at} ({args.reason})")
        elif args.command == "list":
            now = datetime.now(UTC)
            entries = enrollment.listing()
            revocation = enrollment.revocation(entries, args.timeout or settings.signing_timeout_s)
            for e in entries:
                state = "expired" if e.not_after < now else "valid" if e.has_key else "no key"
                print(f"{e.label:45} {e.common_name:30} {e.title:28} serial {e.serial} until "
                      f"{e.not_after:%Y-%m-%d} ({state}) revocation: {revocation[e.label]}")
            for label in enrollment.keys.pending():
                print(f"{label:45} key made, waiting for its certificate (import-cert)")
        else:
            n = enroll_roster(enrollment, args.roster, _unit_names(settings), replace=args.replace)
            print(f"{n} keys enrolled in token {settings.pkcs11_token!r}")
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
