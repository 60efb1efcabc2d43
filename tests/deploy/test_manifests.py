"""The deployment files, checked where no container engine or Kubernetes runs.

Each file is validated against its published schema by a maintained library (``jsonschema`` with
the Compose Specification and KubeRay's CRD schema kept in ``schemas/``; ``kubernetes-validate``
with the Kubernetes schemas it ships, strict), then for what the schemas cannot say: the
services and their order, health checks and probes, secrets kept out of images and environment,
GPU reservations, and the images' pins agreeing with the project's.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from ridgerider.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).with_name("schemas")
KUBERAY = ROOT / "deploy" / "kuberay"
K8S_VERSION = "1.32"
SERVICES = {"postgres", "redis", "migrate", "api", "ray-head", "worker"}
RIDGERIDER = {"migrate", "api", "ray-head", "worker"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}", doc)
        for path in sorted(KUBERAY.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def strict(schema: Any) -> Any:
    """A CRD schema as ``kubectl --validate=strict`` reads it: unknown fields are errors."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    keep = out.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in out
    if "properties" in out and not keep:
        out["additionalProperties"] = False
    return out


@cache
def raycluster_validator() -> jsonschema.protocols.Validator:
    schema = strict(json.loads((SCHEMAS / "raycluster-v1.json").read_text()))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


# -- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.gpu.yml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(load(ROOT / name))


def test_the_compose_schema_catches_a_mistake() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    compose = load(ROOT / "docker-compose.yml")
    bad = copy.deepcopy(compose)
    bad["services"]["api"]["helthcheck"] = bad["services"]["api"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        jsonschema.Draft7Validator(schema).validate(bad)


@pytest.mark.parametrize(("name", "doc"), manifests(), ids=[n for n, _ in manifests()])
def test_manifests_follow_their_schemas(name: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"] == "ray.io/v1":
        raycluster_validator().validate(doc)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_manifest_schemas_catch_mistakes() -> None:
    docs = dict(manifests())
    ray = copy.deepcopy(docs["raycluster.yaml:RayCluster"])
    ray["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(jsonschema.ValidationError, match="maxReplica"):
        raycluster_validator().validate(ray)
    api = copy.deepcopy(docs["api.yaml:Deployment"])
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, K8S_VERSION, strict=True)


# -- compose ---------------------------------------------------------------------------------


def test_compose_has_the_stack_in_order() -> None:
    services = load(ROOT / "docker-compose.yml")["services"]
    assert set(services) == SERVICES
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    for name in ("api", "ray-head"):  # the archive is at head before anything serves
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "api", "ray-head"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "deploy" not in services["worker"] and "container_name" not in services["worker"]
    assert "ridgerider worker" in services["worker"]["command"][0]  # scalable: --scale worker=N
    volumes = load(ROOT / "docker-compose.yml")["volumes"]
    assert {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])} <= set(
        volumes
    )


def test_compose_keeps_secrets_out_of_images_and_environment() -> None:
    compose = load(ROOT / "docker-compose.yml")
    for name in RIDGERIDER:
        service = compose["services"][name]
        env = service["environment"]
        assert not {"RIDGERIDER_DATABASE_URL", "RIDGERIDER_REDIS_URL"} & set(env), name
        assert env["RIDGERIDER_DATABASE_URL_FILE"] == "/run/secrets/database_url"
        assert {"database_url", "redis_url"} <= set(service["secrets"])
    assert all("file" in s for s in compose["secrets"].values())
    assert "POSTGRES_PASSWORD" not in compose["services"]["postgres"]["environment"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"secrets/", ".env", ".git/"} <= set(ignored)
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()


def test_every_setting_is_listed_in_env_example() -> None:
    listed = set(
        re.findall(r"^#? ?(RIDGERIDER_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    wanted = {f"RIDGERIDER_{name.upper()}" for name in Settings.model_fields}
    assert listed == wanted


def test_gpu_workers_reserve_a_gpu() -> None:
    gpu = load(ROOT / "docker-compose.gpu.yml")["services"]["gpu-worker"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
    assert "--num-gpus=1" in gpu["command"][0]
    assert gpu["build"]["dockerfile"] == "deploy/Dockerfile.cuda"


# -- images ----------------------------------------------------------------------------------


def dockerfile(name: str) -> DockerfileParser:
    parser = DockerfileParser(fileobj=(ROOT / "deploy" / name).open("rb"))
    return parser


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def pinned_torch() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"pip install torch==([\d.]+)", readme).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_images_are_multi_stage_unprivileged_and_pinned(name: str) -> None:
    parser = dockerfile(name)
    assert len(instructions(parser, "FROM")) >= 2  # build, then runtime
    last_from = max(i for i, x in enumerate(parser.structure) if x["instruction"] == "FROM")
    final = parser.structure[last_from:]
    users = [x["value"] for x in final if x["instruction"] == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    assert json.loads(instructions(parser, "ENTRYPOINT")[-1]) == ["ridgerider"]
    assert any(x["instruction"] == "COPY" and "--from=build" in x["value"] for x in final)
    args = dict(a.split("=", 1) for a in instructions(parser, "ARG") if "=" in a)
    assert args["TORCH_VERSION"] == pinned_torch()
    baked = " ".join(instructions(parser, "ENV") + instructions(parser, "ARG")).upper()
    assert not re.search(r"RIDGERIDER_\w*URL|PASSWORD|TOKEN", baked), baked  # at run time
    copied = " ".join(instructions(parser, "COPY"))
    assert "secrets" not in copied and ".env" not in copied


def test_the_cuda_image_matches_its_torch_wheel() -> None:
    parser = dockerfile("Dockerfile.cuda")
    args = dict(a.split("=", 1) for a in instructions(parser, "ARG") if "=" in a)
    assert all(f.startswith("nvidia/cuda:${CUDA_VERSION}-runtime") for f in
               instructions(parser, "FROM"))  # fmt: skip
    major, minor, *_ = args["CUDA_VERSION"].split(".")
    assert args["TORCH_CUDA"] == f"cu{major}{minor}"


def test_ray_versions_agree() -> None:
    parser = dockerfile("Dockerfile")
    args = dict(a.split("=", 1) for a in instructions(parser, "ARG") if "=" in a)
    cluster = dict(manifests())["raycluster.yaml:RayCluster"]
    assert cluster["spec"]["rayVersion"] == args["RAY_VERSION"]
    cuda = dict(
        a.split("=", 1) for a in instructions(dockerfile("Dockerfile.cuda"), "ARG") if "=" in a
    )
    assert cuda["RAY_VERSION"] == args["RAY_VERSION"]


# -- Kubernetes ------------------------------------------------------------------------------


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    if doc["kind"] == "RayCluster":
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        return [c for g in groups for c in g["template"]["spec"]["containers"]]
    return spec["template"]["spec"]["containers"]


def test_kubernetes_probes_secrets_and_gpus() -> None:
    docs = dict(manifests())
    api = docs["api.yaml:Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert (
        docs["api.yaml:Service"]["spec"]["selector"]
        == docs["api.yaml:Deployment"]["spec"]["selector"]["matchLabels"]
    )
    assert set(docs["secret.yaml:Secret"]["stringData"]) == {"database_url", "redis_url"}
    settings = docs["configmap.yaml:ConfigMap"]["data"]
    assert settings["RIDGERIDER_DATABASE_URL_FILE"] == "/run/secrets/ridgerider/database_url"
    for key in ("api.yaml:Deployment", "migrate-job.yaml:Job", "raycluster.yaml:RayCluster"):
        for c in containers(docs[key]):
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/run/secrets/ridgerider" in mounts, (key, c["name"])
            assert c["envFrom"] == [{"configMapRef": {"name": "ridgerider-settings"}}]
            names = {e["name"] for e in c.get("env", [])}
            assert not {"RIDGERIDER_DATABASE_URL", "RIDGERIDER_REDIS_URL"} & names
    cluster = docs["raycluster.yaml:RayCluster"]["spec"]
    assert cluster["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    for g in groups.values():
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    (gpu,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "cuda" in gpu["image"]
    assert "nvidia.com/gpu" not in str(groups["cpu"])
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert "ridgerider worker" in head["template"]["spec"]["containers"][0]["args"][0]
    assert "--gpu-workers" in head["template"]["spec"]["containers"][0]["args"][0]


def test_license_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
