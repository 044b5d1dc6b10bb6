"""deploy/: what the schemas of ``make deploy-check`` cannot know.

Every Tidings process that deploy/compose/compose.yaml or deploy/kubernetes/ starts is read back as the command,
the environment and the config file it would get, and checked against Tidings itself: the command names a real
module, each TIDINGS_* variable is a real setting and the whole loads through ``tidings.conf.load``, the probes ask
the ports that module serves /healthz and /readyz on, the other modules it dials are reachable where it dials them,
every consumer group of the job module runs in exactly one Deployment, the migration runs before the modules. The
schemas are checked here too on the YAML as Compose and Kubernetes read it (anchors merged), which the CLI of
``make deploy-check`` does not see.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, get_args
from unittest import mock

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import BaseModel

from tidings import conf
from tidings.bff.wire import instance_address
from tidings.cli import ModuleName
from tidings.pkg.conf import ConfigError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
KUBERNETES = ROOT / "deploy" / "kubernetes"
# The Kubernetes release the manifests are checked against (the Makefile's K8S_VERSION).
K8S_VERSION = "1.33.0"
CONFIG_PATH = "/etc/tidings/tidings.yaml"
# The image's name in the manifests, which kustomization.yaml's images: entry retags.
IMAGE = "tidings"
# The gRPC servers each module dials (tidings.bootstrap.Infra.channel): a wrong or missing dial is only found at the
# first call, never by a probe.
DIALS = {"bff": ("account", "chat"), "chat": ("account",), "admin": ("account", "chat")}
# Where each module answers /healthz and /readyz: the bff and the back office on their metrics listener (away from
# the clients' and operators' port), the others on their one HTTP listener.
PROBE_LISTENER = {"bff": "metrics", "admin": "metrics"}
AUTOSCALED = {"bff", "chat", "account", "job-push"}
# What the secrets hold in these checks: real values' shapes (the placeholders are refused on purpose).
SECRET_VALUES = {"database-url": "mysql+aiomysql://tidings:pw@mysql-primary:3306/tidings"}
SECRET_DEFAULT = "s" * 48
# What each process must be given in its environment, never in the config file: without it, it refuses to start
# (the secrets) or reaches no database (the URL carries the password).
DATABASE, JWT, INTERNAL = "TIDINGS_DATABASE__URL", "TIDINGS_AUTH__JWT_SECRET", "TIDINGS_AUTH__INTERNAL_SECRET"
NEEDS = {
    "migrate": {DATABASE},
    "account": {DATABASE, JWT},
    "chat": {DATABASE},
    "job": {DATABASE, INTERNAL},
    "task": {DATABASE},
    "admin": {DATABASE},
    "bff": {INTERNAL},
}


@dataclass
class Process:
    """One Tidings process as a deployment file starts it."""

    where: str
    args: list[str]
    env: dict[str, str]
    config: str  # the text of the config file it is given
    probes: dict[str, tuple[str, int]] = field(default_factory=dict)  # readiness/liveness/startup -> (path, port)
    ports: set[int] = field(default_factory=set)  # those its container declares (Kubernetes)

    @property
    def module(self) -> str | None:
        known = {module.value for module in ModuleName}
        return self.args[1] if self.args[:1] == ["serve"] and self.args[1:2] and self.args[1] in known else None


# ---------------------------------------------------------------- Tidings' side


def setting_exists(name: str) -> bool:
    """Whether TIDINGS_A__B__C names a field a.b.c of ``Settings`` (a nested model's field at every step)."""
    if not name.startswith("TIDINGS_"):
        return False
    model: type[BaseModel] | None = conf.Settings
    for part in name.removeprefix("TIDINGS_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        # A section (a model), or an optional one (``Listen | None``); anything else is a value: nothing below it.
        candidates = [annotation, *get_args(annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return True


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Exactly ``env`` as the TIDINGS_* variables of this process."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith("TIDINGS_")}
    with mock.patch.dict(os.environ, {**kept, **env}, clear=True):
        yield


def load(process: Process, tmp: Path) -> conf.Settings:
    path = tmp / "tidings.yaml"
    path.write_text(process.config, encoding="utf-8")
    with environment({key: value for key, value in process.env.items() if key.startswith("TIDINGS_")}):
        return conf.load(path)


def process_problems(process: Process, tmp: Path) -> tuple[list[str], conf.Settings | None]:
    """What is wrong with one process on its own; its settings if they load."""
    where = process.where
    problems = [
        f"{where}: {name} is no setting"
        for name in process.env
        if name.startswith("TIDINGS_") and not setting_exists(name)
    ]
    command, rest = (process.args[0], process.args[1:]) if process.args else ("", [])
    needed = NEEDS.get(process.module or command, set()) - set(process.env)
    problems += [f"{where}: {name} is not set, which `tidings {command}` needs here" for name in sorted(needed)]
    if command == "serve":
        if not rest or rest[0] not in {module.value for module in ModuleName}:
            problems.append(f"{where}: `tidings serve` of no module: {process.args}")
    elif command != "migrate":
        problems.append(f"{where}: runs `tidings {command}`, neither serve nor migrate")
    if rest[-2:] != ["--config", CONFIG_PATH]:
        problems.append(f"{where}: not given the config at {CONFIG_PATH}: {process.args}")
    try:
        settings = load(process, tmp)
    except ConfigError as exc:
        return [*problems, f"{where}: {exc}"], None
    module = process.module
    if module is not None:
        listeners = getattr(settings.modules, module)
        port = getattr(listeners, PROBE_LISTENER.get(module, "http")).port
        wanted = {"readiness": ("/readyz", port), "liveness": ("/healthz", port), "startup": ("/healthz", port)}
        for kind, probe in process.probes.items():
            if probe != wanted[kind]:
                problems.append(f"{where}: {kind} probe asks {probe}, but {module} serves {wanted[kind]}")
        if "readiness" not in process.probes:
            problems.append(f"{where}: no readiness probe on /readyz")
        if process.ports:
            served = {
                listen.port
                for name in ("http", "grpc", "internal_grpc", "metrics")
                if (listen := getattr(listeners, name, None)) is not None
            }
            if served - process.ports:
                problems.append(
                    f"{where}: {module} listens on {sorted(served)}, the container opens {sorted(process.ports)}"
                )
        if module == "bff":
            try:
                address = instance_address(settings.modules.bff, settings.realtime)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
            else:
                if not address.endswith(f":{settings.modules.bff.internal_grpc.port}"):
                    problems.append(f"{where}: advertises {address}, not the internal gRPC port")
        for target in DIALS.get(module, ()):
            if getattr(settings.modules, target).dial is None:
                problems.append(f"{where}: modules.{target}.dial is unset: {module} would dial its listen address")
    return problems, settings


def fleet_problems(processes: list[Process], tmp: Path, reachable: dict[str, dict[int, str]]) -> list[str]:
    """What is wrong with the processes together. ``reachable``: host name -> port -> the module that answers."""
    problems: list[str] = []
    groups: dict[str, list[str]] = {}
    for process in processes:
        found, settings = process_problems(process, tmp)
        problems += found
        if settings is None or process.module is None:
            continue
        for target in DIALS.get(process.module, ()):
            dial = getattr(settings.modules, target).dial
            if dial is None:
                continue
            host, _, port = dial.rpartition(":")
            grpc = getattr(settings.modules, target).grpc
            answered_by = reachable.get(host, {}).get(int(port))
            if answered_by != target or grpc is None or grpc.port != int(port):
                problems.append(f"{process.where}: dials {target} at {dial}, where {answered_by or 'nothing'} answers")
        if process.module == "job":
            for group in settings.modules.job.groups:
                groups.setdefault(group, []).append(process.where)
    for group in conf.JOB_GROUPS:
        if len(groups.get(group, [])) != 1:
            problems.append(f"job group {group} runs in {groups.get(group, [])}, not in exactly one place")
    migrations = [process.where for process in processes if process.args[:1] == ["migrate"]]
    if len(migrations) != 1:
        problems.append(f"`tidings migrate` runs in {migrations}, not exactly once")
    return problems


# ---------------------------------------------------------------- Kubernetes


def k8s_documents() -> dict[str, list[dict[str, Any]]]:
    return {
        str(path.relative_to(KUBERNETES)): [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        for path in sorted(KUBERNETES.rglob("*.yaml"))
    }


def k8s_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            value = SECRET_VALUES.get(source["secretKeyRef"]["key"], SECRET_DEFAULT)
        elif "fieldRef" in source:
            value = {"status.podIP": "10.1.2.3"}[source["fieldRef"]["fieldPath"]]
        else:
            # $(NAME) is an earlier variable of the same container (Kubernetes expands it).
            value = re.sub(r"\$\((\w+)\)", lambda match: env[match.group(1)], item["value"])
        env[item["name"]] = value
    return env


def k8s_probe(probe: dict[str, Any]) -> tuple[str, int]:
    return probe["httpGet"]["path"], probe["httpGet"]["port"]


def k8s_problems(documents: dict[str, list[dict[str, Any]]], tmp: Path) -> list[str]:
    problems: list[str] = []
    everything = [(name, doc) for name, docs in documents.items() for doc in docs]
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, doc in everything:
        by_kind.setdefault(doc["kind"], []).append((name, doc))
        if doc["kind"] != "Kustomization":
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    configmaps = {doc["metadata"]["name"]: doc["data"] for _, doc in by_kind.get("ConfigMap", [])}
    secret_keys = {key for _, doc in by_kind.get("Secret", []) for key in doc.get("stringData", {})}
    workloads = by_kind.get("Deployment", []) + by_kind.get("Job", [])
    deployments = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("Deployment", [])}
    processes: list[Process] = []
    modules_of: dict[str, str] = {}
    for name, doc in workloads:
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        pod = doc["spec"]["template"]["spec"]
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is not set")
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for container in pod["containers"]:
            if container["image"].partition(":")[0] != IMAGE:
                problems.append(f"{where}: runs {container['image']}, not the {IMAGE} image")
            security = container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem") is not True or security.get("capabilities", {}).get("drop") != [
                "ALL"
            ]:
                problems.append(f"{where}: the root file system is writable or capabilities are kept")
            for bound in ("requests", "limits"):
                if set(container.get("resources", {}).get(bound, {})) != {"cpu", "memory"}:
                    problems.append(f"{where}: no CPU and memory {bound}")
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and (ref["name"] != "tidings-secrets" or ref["key"] not in secret_keys):
                    problems.append(f"{where}: {item['name']} reads a secret key the example Secret lacks: {ref}")
            mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
            config_map = volumes.get(mounts.get(str(Path(CONFIG_PATH).parent), ""), {}).get("configMap", {})
            config = configmaps.get(config_map.get("name", ""), {}).get(Path(CONFIG_PATH).name)
            if config is None:
                problems.append(f"{where}: no ConfigMap with {Path(CONFIG_PATH).name} mounted at {CONFIG_PATH}")
                continue
            probes = {
                kind: k8s_probe(container[f"{kind}Probe"])
                for kind in ("readiness", "liveness", "startup")
                if f"{kind}Probe" in container
            }
            ports = {port["containerPort"] for port in container.get("ports", [])}
            process = Process(where, container.get("args", []), k8s_env(container), config, probes, ports)
            if doc["kind"] == "Job" and process.args[:1] != ["migrate"]:
                problems.append(f"{where}: a Job that is not `tidings migrate`")
            if process.module is not None:
                modules_of[doc["metadata"]["name"]] = process.module
            processes.append(process)
    # Services: host -> port -> the module whose pods the Service selects.
    reachable: dict[str, dict[int, str]] = {}
    for name, service in by_kind.get("Service", []):
        selected = [d for d, doc in deployments.items() if labels_match(service["spec"]["selector"], doc)]
        if len(selected) != 1:
            problems.append(f"{name}: Service/{service['metadata']['name']} selects {selected}")
            continue
        container = deployments[selected[0]]["spec"]["template"]["spec"]["containers"][0]
        named = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        for port in service["spec"]["ports"]:
            if named.get(port["targetPort"]) != port["port"]:
                problems.append(
                    f"{name}: Service/{service['metadata']['name']} port {port['port']} goes to {port['targetPort']}"
                )
            reachable.setdefault(service["metadata"]["name"], {})[port["port"]] = modules_of.get(selected[0], "")
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        for name, doc in by_kind.get(kind, []):
            target = doc["spec"]["scaleTargetRef"]["name"] if kind == "HorizontalPodAutoscaler" else None
            if target is None:
                matched = [
                    d
                    for d, deployment in deployments.items()
                    if labels_match(doc["spec"]["selector"]["matchLabels"], deployment)
                ]
                if len(matched) != 1:
                    problems.append(f"{name}: PodDisruptionBudget/{doc['metadata']['name']} selects {matched}")
            elif target not in deployments:
                problems.append(f"{name}: HorizontalPodAutoscaler/{doc['metadata']['name']} scales no Deployment")
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for _, doc in by_kind.get("HorizontalPodAutoscaler", [])}
    if scaled != AUTOSCALED:
        problems.append(f"autoscaled: {sorted(scaled)}, expected {sorted(AUTOSCALED)}")
    return problems + fleet_problems(processes, tmp, reachable)


def labels_match(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


# ---------------------------------------------------------------- Compose


def compose_document() -> dict[str, Any]:
    # PyYAML merges `<<: *anchor` as Compose does.
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    return document


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with a secret-shaped value for each."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?(?::\?[^}]*)?\}", lambda match: match.group(2) or SECRET_DEFAULT, value)


def compose_schema() -> dict[str, Any]:
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def compose_problems(document: dict[str, Any], tmp: Path) -> list[str]:
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    problems = [
        f"compose.yaml: {'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    config = (COMPOSE / "tidings.yaml").read_text(encoding="utf-8")
    processes: list[Process] = []
    reachable: dict[str, dict[int, str]] = {}
    services: dict[str, dict[str, Any]] = document["services"]
    for name, service in services.items():
        if not interpolate(service.get("image", "")).startswith("tidings:"):
            continue
        where = f"compose.yaml: {name}"
        if "./tidings.yaml:/etc/tidings/tidings.yaml:ro" not in service.get("volumes", []):
            problems.append(f"{where}: tidings.yaml is not mounted at {CONFIG_PATH}")
        env = {key: interpolate(str(value)) for key, value in service.get("environment", {}).items()}
        probes = {}
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        if (found := re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test)) is not None:
            probes["readiness"] = (found.group(2), int(found.group(1)))
        process = Process(where, list(service["command"]), env, config, probes)
        processes.append(process)
        if process.module is not None:
            settings = load(process, tmp) if not process_problems(process, tmp)[0] else None
            grpc = getattr(settings.modules, process.module).grpc if settings is not None else None
            if grpc is not None:
                reachable[name] = {grpc.port: process.module}
            if (
                "DATABASE__URL" in " ".join(env)
                and service.get("depends_on", {}).get("migrate", {}).get("condition")
                != "service_completed_successfully"
            ):
                problems.append(f"{where}: starts without waiting for migrate to complete")
    return problems + fleet_problems(processes, tmp, reachable)


# ---------------------------------------------------------------- the tests


def test_the_kubernetes_manifests_match_tidings(tmp_path: Path) -> None:
    assert k8s_problems(k8s_documents(), tmp_path) == []


def test_the_compose_file_matches_tidings(tmp_path: Path) -> None:
    assert compose_problems(compose_document(), tmp_path) == []


def test_the_configmap_is_production_example_yaml() -> None:
    documents = k8s_documents()
    (configmap,) = documents["configmap.yaml"]
    expected = (ROOT / "configs" / "production.example.yaml").read_text(encoding="utf-8")
    assert configmap["data"]["tidings.yaml"] == expected


def test_the_kustomization_lists_every_long_lived_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    top_level = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(top_level)
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]


def test_the_migration_runs_before_the_modules_and_alone() -> None:
    (job,) = k8s_documents()["release/migrate-job.yaml"]
    pod = job["spec"]["template"]["spec"]
    assert job["kind"] == "Job"
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"][:1] == ["migrate"]
    compose = compose_document()["services"]
    assert compose["migrate"]["command"][:1] == ["migrate"]
    assert compose["migrate"]["restart"] == "no"


def setting_names(documents: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        item["name"]
        for docs in documents.values()
        for doc in docs
        if doc["kind"] in ("Deployment", "Job")
        for item in doc["spec"]["template"]["spec"]["containers"][0].get("env", [])
        if item["name"].startswith("TIDINGS_")
    ]


def test_the_manifests_name_settings_that_exist() -> None:
    names = setting_names(k8s_documents())
    assert "TIDINGS_REALTIME__ADVERTISE" in names
    assert [name for name in names if not setting_exists(name)] == []
    assert not setting_exists("TIDINGS_REALTIME__ADVERTISED")
    assert not setting_exists("TIDINGS_MODULES__CHAT__DIAL__HOST")
    assert setting_exists("TIDINGS_MODULES__CHAT__GRPC__PORT")


# Each mutation is a mistake the checks must catch: the checks are not vacuous.
def deployment(documents: dict[str, list[dict[str, Any]]], file: str) -> dict[str, Any]:
    container: dict[str, Any] = documents[file][0]["spec"]["template"]["spec"]["containers"][0]
    return container


def wrong_readiness_port(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "chat.yaml")["readinessProbe"]["httpGet"]["port"] = 8081


def bff_probed_on_the_public_port(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "bff.yaml")["livenessProbe"]["httpGet"]["port"] = 8080


def misspelled_setting(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "bff.yaml")["env"][1]["name"] = "TIDINGS_REALTIME__ADVERTIZE"


def wildcard_advertise(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "bff.yaml")["env"][1]["value"] = "0.0.0.0:9180"


def unknown_module(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "task.yaml")["args"][1] = "tasks"


def dial_to_the_wrong_port(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "chat.yaml")["env"][0]["value"] = "account:8081"


def push_group_nowhere(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "job-push.yaml")["env"][0]["value"] = '["index"]'


def a_field_kubernetes_does_not_know(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "account.yaml")["securityContext"]["readOnlyRootFileSystem"] = True


def writable_root(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "admin.yaml")["securityContext"]["readOnlyRootFilesystem"] = False


def another_image(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "job.yaml")["image"] = "tidings-job:0.1.0"


def migrate_job_serves(documents: dict[str, list[dict[str, Any]]]) -> None:
    deployment(documents, "release/migrate-job.yaml")["args"][0] = "serve"


@pytest.mark.parametrize(
    ("mistake", "said"),
    [
        (wrong_readiness_port, "readiness probe asks ('/readyz', 8081)"),
        (bff_probed_on_the_public_port, "liveness probe asks ('/healthz', 8080)"),
        (misspelled_setting, "TIDINGS_REALTIME__ADVERTIZE is no setting"),
        (wildcard_advertise, "realtime.advertise must be set"),
        (unknown_module, "`tidings serve` of no module"),
        (dial_to_the_wrong_port, "dials account at account:8081"),
        (push_group_nowhere, "job group push runs in []"),
        (a_field_kubernetes_does_not_know, "readOnlyRootFileSystem"),
        (writable_root, "the root file system is writable"),
        (migrate_job_serves, "a Job that is not `tidings migrate`"),
        (another_image, "runs tidings-job:0.1.0"),
    ],
)
def test_a_mistake_in_the_manifests_is_named(mistake: Any, said: str, tmp_path: Path) -> None:
    documents = copy.deepcopy(k8s_documents())
    mistake(documents)
    problems = k8s_problems(documents, tmp_path)
    assert any(said in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("service", "key", "value", "said"),
    [
        ("chat", "healthcheck", {"test": ["CMD", "python", "-c", "urlopen('http://127.0.0.1:8081/readyz')"]}, "8081"),
        ("job", "depends_on", {"redis": {"condition": "service_healthy"}}, "without waiting for migrate"),
        ("bff", "environment", {"TIDINGS_REALTIME__ADVERTISE": "bff:9180"}, "TIDINGS_AUTH__INTERNAL_SECRET is not set"),
        ("account", "stop_signal", 15, "stop_signal"),
    ],
)
def test_a_mistake_in_the_compose_file_is_named(service: str, key: str, value: Any, said: str, tmp_path: Path) -> None:
    document = compose_document()
    document["services"][service][key] = value
    problems = compose_problems(document, tmp_path)
    assert any(said in problem for problem in problems), problems


def test_a_mistake_in_a_merged_anchor_is_seen(tmp_path: Path) -> None:
    # check-jsonschema reads merge keys unmerged, so a typo in x-tidings escapes `make deploy-check`, not this.
    text = (COMPOSE / "compose.yaml").read_text(encoding="utf-8").replace("  read_only: true", "  read_onyl: true", 1)
    problems = compose_problems(yaml.safe_load(text), tmp_path)
    assert any("read_onyl" in problem for problem in problems), problems
