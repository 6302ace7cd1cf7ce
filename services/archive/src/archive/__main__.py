"""Archive's operator commands: ``python -m archive <command>``.

  verify-ledger               re-walk the hash chain and the head timestamps; exit 1 at the first broken entry
  stamp-ledger                timestamp the ledger head now (MOTCUA_TSA_URL)
  legal-hold CODE [--off] [--reason TEXT]
                              set (or clear) the legal hold on both copies of a dossier's package
  verify-package CODE         re-hash both copies now (and repair a bad one from the good one)
  fixity-sweep                run one fixity sweep now
"""

from __future__ import annotations

import argparse
import json
import sys

from archive.config import ArchiveSettings
from archive.entrypoints import bootstrap
from motcua.errors import DomainError
from motcua.messaging.outbox import Outbox
from motcua.messaging.publisher import Publisher
from motcua.store import open_store
from motcua.unit_of_work import UnitsOfWork


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify-ledger")
    commands.add_parser("stamp-ledger")
    hold = commands.add_parser("legal-hold")
    hold.add_argument("code")
    hold.add_argument("--off", action="store_true")
    hold.add_argument("--reason", default="")
    verify = commands.add_parser("verify-package")
    verify.add_argument("code")
    commands.add_parser("fixity-sweep")
    args = parser.parse_args(argv)
    settings = ArchiveSettings.load()
    store = open_store(settings)
    publisher = None
    try:
        if args.command != "verify-ledger":  # the others write (fixity results may publish archive.fixity_failed)
            publisher = Publisher(settings.amqp_uri)
        uows = UnitsOfWork(store, Outbox(publisher))
        book = bootstrap.ledger(settings, uows)
        if args.command == "verify-ledger":
            report = book.verify()
            print("\n".join(report.lines()))
            return 0 if report.ok else 1
        if args.command == "stamp-ledger":
            if book.timestamper is None:
                print("not timestamped: MOTCUA_TSA_URL is not set", file=sys.stderr)
                return 2
            stamp = book.stamp_head()
            print(f"stamped entry {stamp['seq']}" if stamp else "head already stamped")
            return 0
        copies = bootstrap.vaults(settings)
        if args.command == "legal-hold":
            entry = book.legal_hold(args.code, not args.off, copies, args.reason)
            print(f"legal hold {'on' if entry['legal_hold'] else 'off'} for {args.code}")
            return 0
        fixity = bootstrap.fixity(settings, uows, copies)
        result = fixity.check(book.find(args.code)) if args.command == "verify-package" else fixity.sweep()
        print(json.dumps(result, indent=2, default=str))
        return 0
    except DomainError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        if publisher is not None:
            publisher.close()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
