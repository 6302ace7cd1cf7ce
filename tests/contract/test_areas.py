"""Every unit of the catalog is served: its area has a consumer for every queue the code publishes
to, in ``make run`` and in every Kubernetes overlay.

The code publishes work to ``<service>.<area>`` and events with routing key ``<area>.<event>``,
which the ``<service>.<area>`` queues of the subscribing services bind; a unit whose area had no
worker would see its dossiers accepted into queues no one reads (the defect this test guards:
commune and province dossiers were once queued under the receiving unit's own slug)."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
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


def config_of(objects) -> dict[str, str]:
    config: dict[str, str] = {}
    for config_map in [o for o in objects if o["kind"] == "ConfigMap"]:
        config.update(config_map.get("data") or {})
    return config


def deployment_areas(deployment: dict, config: dict[str, str]) -> list[str]:
    """The areas a Deployment's processes serve: its own MOTCUA_AREAS, else the shared ConfigMap's,
    else every area of the catalog."""
    (container,) = manifests.pod_spec(deployment)["containers"]
    env = manifests.container_env(container)
    areas = env["MOTCUA_AREAS"]["value"] if "MOTCUA_AREAS" in env else config.get("MOTCUA_AREAS", "")
    return [a for a in areas.split(",") if a] or CATALOG.areas()


def consumers(objects) -> dict[str, str]:
    """queue → the name of a worker Deployment consuming it."""
    config = config_of(objects)
    consumed = {}
    for deployment in manifests.app_deployments(objects):
        if manifests.labels(deployment)["app.kubernetes.io/component"] != "worker":
            continue
        service = manifests.labels(deployment)["app.kubernetes.io/name"]
        for area in deployment_areas(deployment, config):
            consumed[queue_name(service, area)] = manifests.name(deployment)
    return consumed


def rule_violations(objects) -> list[str]:
    """The platform's rules across the code and one rendered overlay."""
    problems = []
    consumed = consumers(objects)
    problems += [f"no worker consumes {q}" for q in sorted(published_queues() - set(consumed))]
    deployments = {manifests.name(d): d for d in manifests.app_deployments(objects)}
    retries = len(PlatformSettings().retry_delays_ms)
    for scaled in [o for o in objects if o["kind"] == "ScaledObject"]:
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.append(f"ScaledObject {manifests.name(scaled)} targets no Deployment ({target})")
            continue
        for trigger in scaled["spec"]["triggers"]:
            queue = trigger["metadata"]["queueName"]
            main = queue.split(".retry.")[0]
            if consumed.get(main) != target:
                problems.append(f"ScaledObject {manifests.name(scaled)} scales {target} on {queue}, "
                                f"which {target} does not consume")
            elif ".retry." in queue and not 1 <= int(queue.rsplit(".", 1)[1]) <= retries:
                problems.append(f"ScaledObject {manifests.name(scaled)}: no retry queue {queue}")
    config = config_of(objects)
    known = set(CATALOG.areas())
    for deployment in deployments.values():
        unknown = set(deployment_areas(deployment, config)) - known
        if unknown:
            problems.append(f"Deployment {manifests.name(deployment)} names areas not in the catalog: "
                            f"{sorted(unknown)}")
    return problems


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_every_overlay_consumes_every_queue_the_code_publishes_to(overlay):
    assert not rule_violations(manifests.render(f"overlays/{overlay}"))


def test_the_rules_fail_when_an_area_loses_its_workers_or_its_scaler_misses():
    objects = manifests.render("overlays/production")
    without = [o for o in objects
               if not (o["kind"] == "Deployment" and o["metadata"]["name"] == "routing-worker-tho-xuan")]
    assert "no worker consumes routing.tho-xuan" in rule_violations(without)
    assert any("targets no Deployment (routing-worker-tho-xuan)" in p for p in rule_violations(without))
    crossed = copy.deepcopy(list(objects))
    (scaled,) = [o for o in crossed
                 if o["kind"] == "ScaledObject" and o["metadata"]["name"] == "notify-worker-bim-son"]
    scaled["spec"]["triggers"][0]["metadata"]["queueName"] = "notify.ba-thuoc"
    assert any("does not consume" in p for p in rule_violations(crossed))
    for deployment in crossed:
        if deployment["kind"] == "Deployment" and deployment["metadata"]["name"] == "intake-worker-bim-son":
            (areas,) = [e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
                        if e["name"] == "MOTCUA_AREAS"]
            areas["value"] = "bim-son-moi"
    assert any("names areas not in the catalog" in p for p in rule_violations(crossed))


def test_adding_an_area_to_the_catalog_and_regenerating_is_all_it_takes(tmp_path):
    """A new district in the catalog: regenerate, and production runs its workers, scaled on its queues."""
    from motcua_dev import deploy

    catalog = tmp_path / "catalog"
    shutil.copytree(SAMPLE_CATALOG, catalog)
    units = catalog / "units.yaml"
    units.write_text(units.read_text(encoding="utf-8") + """
  - slug: nhu-xuan
    unit_id: "000.00.30.H56"
    name: "UBND huyện Như Xuân"
    level: district
    parent: thanh-hoa
""", encoding="utf-8")
    tree = tmp_path / "deploy"
    shutil.copytree(manifests.DEPLOY, tree)
    assert deploy.main(["--catalog", str(catalog), "--deploy", str(tree)]) == 0
    assert deploy.main(["--catalog", str(catalog), "--deploy", str(tree), "--check"]) == 0
    result = subprocess.run([manifests.kubectl(), "kustomize", str(tree / "overlays" / "production")],
                            capture_output=True, text=True, timeout=300, check=True)
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for service in ("intake", "routing", "signing", "notify", "archive"):
        assert ("Deployment", f"{service}-worker-nhu-xuan") in names
        assert ("ScaledObject", f"{service}-worker-nhu-xuan") in names
    config = config_of(objects)
    assert "nhu-xuan" in config["MOTCUA_AREAS"].split(",")
    queues = consumers(objects)
    assert queues["routing.nhu-xuan"] == "routing-worker-nhu-xuan"
