"""Writes CRD-shaped validation schemas for cert-manager's Certificate and Issuer (cert-manager.io/v1)
from the pydantic models of the PyPI package cloudcoil-models-cert-manager (generated from
cert-manager's CRDs), in a scratch venv:

    python -m venv /tmp/cc && /tmp/cc/bin/pip install cloudcoil==0.6.0 cloudcoil-models-cert-manager==1.17.1.0
    /tmp/cc/bin/python deploy/crds/from_pydantic.py deploy/crds
"""

import sys
from pathlib import Path

import yaml
from cloudcoil.models.cert_manager import v1

ANNOTATIONS = ("title", "default", "description", "$defs")


def plain(node, defs):
    """The schema with $refs inlined and Optional[X] as X (a CRD's openAPIV3Schema has neither)."""
    if isinstance(node, list):
        return [plain(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return plain({**defs[node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    options = node.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            return plain({**{k: v for k, v in node.items() if k != "anyOf"}, **rest[0]}, defs)
    out = {}
    for key, value in node.items():
        if key in ANNOTATIONS:
            continue
        out[key] = {name: plain(v, defs) for name, v in value.items()} if key == "properties" else plain(value, defs)
    return out


def crd(model, plural: str) -> dict:
    schema = model.model_json_schema(by_alias=True)
    kind = model.__name__
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.cert-manager.io"},
            "spec": {"group": "cert-manager.io", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": plain(schema, schema.get("$defs", {}))}}]}}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    header = ("# DERIVED, for validation only (deploy/crds/README.md): cert-manager.io/v1 {kind}, from the\n"
              "# pydantic models of cloudcoil-models-cert-manager==1.17.1.0 (made from cert-manager v1.17's CRDs)\n"
              "# by from_pydantic.py.\n")
    for model, plural in ((v1.Certificate, "certificates"), (v1.Issuer, "issuers")):
        text = yaml.safe_dump(crd(model, plural), sort_keys=False, width=120)
        (out / f"cert-manager.io_{plural}.yaml").write_text(header.format(kind=model.__name__) + text)
