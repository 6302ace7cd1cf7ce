"""Generate the Python code of protos/ into the shared kernel (motcua.<area>.v1). `make protos`.

The generated modules are not committed; every setup path (make run, make test, Dockerfiles) runs
this first. Only files older than their .proto are regenerated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "motcua" / "src"


def main() -> int:
    sources = sorted(PROTOS.rglob("*.proto"))
    stale = [p for p in sources if _is_stale(p)]
    if not stale and "--force" not in sys.argv:
        print("protos: up to date")
        return 0
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={OUT}", f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}", *[str(p) for p in sources]]
    if protoc.main(args) != 0:
        print("protos: protoc failed", file=sys.stderr)
        return 1
    print(f"protos: generated {len(sources)} files into {OUT.relative_to(ROOT)}")
    return 0


def _is_stale(proto: Path) -> bool:
    generated = OUT / proto.relative_to(PROTOS).with_name(proto.stem + "_pb2.py")
    return not generated.exists() or generated.stat().st_mtime < proto.stat().st_mtime


if __name__ == "__main__":
    sys.exit(main())
