"""Every unit of the catalog is served: its area has a consumer for every queue the code publishes
to, in ``make run`` and in every Kubernetes overlay.

The code publishes work to ``<service>.<area>`` and events with routing key ``<area>.<event>``,
which the ``<service>.<area>`` queues of the subscribing services bind; a unit whose area had no
worker would see its dossiers accepted into queues no one reads (the defect this test guards:
commune and province dossiers were once queued under the receiving unit's own slug)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from motcua_dev.platform import platform_specs

from intake.adapters.catalog_file import load_catalog
from motcua.areas import UnitPlace, area_of, catalog_areas
from motcua.messaging.topology import SERVICES, SUBSCRIPTIONS, queue_name
from motcua.settings import SAMPLE_CATALOG, PlatformSettings

CATALOG = load_catalog(SAMPLE_CATALOG)
# The manifests' renderer and readers, shared with the manifests' own contract tests.
_spec = importlib.util.spec_from_file_location("deploy_manifests", Path(__file__).with_name("test_deploy_manifests.py"))
manifests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(manifests)


def published_queues() -> set[str]:
    """The queues a dossier of each unit makes the code publish to, or its events reach: intake,
    routing and signing take work in the dossier's area; notify and archive subscribe to its events."""
    receivers = {s for s in SERVICES if s in ("intake", "routing", "signing") or SUBSCRIPTIONS[s]}
    return {queue_name(service, CATALOG.area(unit).slug) for unit in CATALOG.units for service in receivers}


def test_every_unit_lies_in_one_area_of_its_own_district_or_the_province():
    areas = {slug: CATALOG.area(slug).slug for slug in CATALOG.units}
    assert areas["phuong-ba-dinh"] == "bim-son" and areas["xa-luong-ngoai"] == "ba-thuoc"
    assert areas["thi-tran-tho-xuan"] == "tho-xuan" and areas["tho-xuan"] == "tho-xuan"
    assert areas["thanh-hoa"] == areas["van-phong-dang-ky-dat-dai"] == "thanh-hoa"
    for slug, area in areas.items():
        unit = CATALOG.unit(slug)
        assert CATALOG.unit(area).level in ("district", "province"), slug
        assert area == slug or area in {u.slug for u in CATALOG.ancestors(slug)}, slug
        assert unit.level != "commune" or CATALOG.unit(area).level == "district", slug
    assert CATALOG.areas() == catalog_areas(SAMPLE_CATALOG) == ["ba-thuoc", "bim-son", "thanh-hoa", "tho-xuan"]


def test_a_two_level_province_puts_its_communes_in_the_province_area():
    units = {"tinh": UnitPlace("tinh", "province"), "xa-a": UnitPlace("xa-a", "commune", "tinh"),
             "so-x": UnitPlace("so-x", "province", "tinh")}
    assert {slug: area_of(slug, units) for slug in units} == {"tinh": "tinh", "xa-a": "tinh", "so-x": "tinh"}


def test_make_run_consumes_every_queue_the_code_publishes_to(monkeypatch):
    monkeypatch.delenv("MOTCUA_AREAS", raising=False)
    specs = [s for s in platform_specs({}) if s.name.endswith("-worker")]
    consumed = set()
    for spec in specs:
        service = spec.name.removesuffix("-worker")
        areas = PlatformSettings(**({"areas": spec.env["MOTCUA_AREAS"].split(",")}
                                    if spec.env.get("MOTCUA_AREAS") else {})).served_areas()
        consumed |= {queue_name(service, area) for area in areas}
    assert published_queues() <= consumed


def overlay_consumers(overlay: str) -> set[str]:
    objects = manifests.render(f"overlays/{overlay}")
    config = {}
    for config_map in [o for o in objects if o["kind"] == "ConfigMap"]:
        config.update(config_map.get("data") or {})
    consumed = set()
    for deployment in manifests.app_deployments(objects):
        if manifests.labels(deployment)["app.kubernetes.io/component"] != "worker":
            continue
        (container,) = manifests.pod_spec(deployment)["containers"]
        env = manifests.container_env(container)
        areas = env["MOTCUA_AREAS"]["value"] if "MOTCUA_AREAS" in env else config.get("MOTCUA_AREAS", "")
        served = areas.split(",") if areas else CATALOG.areas()
        consumed |= {queue_name(manifests.labels(deployment)["app.kubernetes.io/name"], a) for a in served}
    return consumed


@pytest.mark.xfail(strict=True, reason="deploy (issue 13): the overlays deploy hand-copied workers for two "
                   "districts only; thanh-hoa and tho-xuan have none")
@pytest.mark.parametrize("overlay", [o for o in manifests.OVERLAYS if not o.startswith("district-")])
def test_every_overlay_consumes_every_queue_the_code_publishes_to(overlay):
    missing = published_queues() - overlay_consumers(overlay)
    assert not missing, f"{overlay}: no worker consumes {sorted(missing)}"
