"""The deployment files: the Dockerfile (hadolint), the kustomizations (rendered, then checked
against the Kubernetes schemas offline) and the systemd units (hardening keys, systemd-analyze).

No container runtime or cluster runs here: the image is linted, not built (docs/deploy.md).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import gateway.config
import relay.config
from tests.support import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
SYSTEMD = REPO / "deploy" / "systemd"
# The oldest Kubernetes minor still supported upstream when this was written; strict: unknown
# fields are errors.
KUBERNETES_VERSION = "1.32.0"
BIN = Path(sys.executable).parent

Manifest = dict[str, Any]


# --- a small kustomize: the parts the kustomizations use -----------------------------------


def _load_resource(path: Path) -> list[Manifest]:
    if path.is_dir():
        return render(path)
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pod_spec(manifest: Manifest) -> Manifest | None:
    spec = manifest.get("spec", {})
    template = spec.get("template", {}).get("spec")
    return template if isinstance(template, dict) else None


def _set_images(manifest: Manifest, images: list[Manifest]) -> None:
    pod = _pod_spec(manifest)
    for container in (pod or {}).get("containers", []):
        name, _, _ = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"


def render(directory: Path) -> list[Manifest]:
    """``resources`` (files and directories), then ``labels`` (pairs, metadata only),
    ``namespace`` and ``images``; anything else in a kustomization is refused."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "resources", "labels", "namespace", "images"}
    assert set(kustomization) <= known, set(kustomization) - known
    manifests = [
        manifest
        for entry in kustomization["resources"]
        for manifest in _load_resource(directory / entry)
    ]
    for manifest in manifests:
        metadata = manifest.setdefault("metadata", {})
        for label in kustomization.get("labels", []):
            assert set(label) == {"pairs"}, "only plain label pairs are rendered here"
            metadata.setdefault("labels", {}).update(label["pairs"])
        if "namespace" in kustomization:
            metadata["namespace"] = kustomization["namespace"]
        _set_images(manifest, kustomization.get("images", []))
    return manifests


def _by_kind(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


@pytest.fixture(params=["gateway", "relay"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render(KUBERNETES / request.param)


# --- Dockerfile ----------------------------------------------------------------------------------


def _stages(dockerfile: str) -> list[list[str]]:
    """Instructions (continuations joined) per stage."""
    joined = dockerfile.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_only_hash_locked_dependencies() -> None:
    stages = _stages((REPO / "Dockerfile").read_text())
    installs = [line for stage in stages for line in stage if "pip install" in line]
    assert installs
    for line in installs:
        for command in line.split("&&"):
            if "pip install" in command:
                assert "--require-hashes" in command or "--no-index" in command, command


def test_final_image_is_non_root_with_a_healthcheck_and_no_build_tools() -> None:
    final = _stages((REPO / "Dockerfile").read_text())[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit()  # runAsNonRoot can check a numeric user
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert not any(line.upper().startswith("RUN ") for line in final)  # nothing built there
    copies = [line for line in final if line.upper().startswith("COPY ")]
    assert copies == ["COPY --from=build /opt/ohttp /opt/ohttp"]
    assert any(line.startswith('ENTRYPOINT ["ohttp"]') for line in final)


def test_dockerignore_keeps_the_build_inputs_only() -> None:
    kept = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {"pyproject.toml", "README.md", "requirements.lock", "requirements-build.lock"}
    assert copied | {"ohttp", "gateway", "relay"} == kept


# --- Kubernetes ----------------------------------------------------------------------------------


def test_rendered_manifests_match_the_kubernetes_schemas(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    assert manifests
    for manifest in manifests:
        kubernetes_validate.validate(copy.deepcopy(manifest), KUBERNETES_VERSION, strict=True)


def test_the_schema_check_can_fail() -> None:
    deployment = _by_kind(render(KUBERNETES / "gateway"))[("Deployment", "ohttp-gateway")]
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_this_renderer_agrees_with_kubectl_kustomize(rendered: tuple[str, list[Manifest]]) -> None:
    name, manifests = rendered
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the rendering was checked against it where it was")
    out = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / name)], capture_output=True, text=True, check=True
    ).stdout
    assert _by_kind([d for d in yaml.safe_load_all(out) if d]) == _by_kind(manifests)


def _containers(manifest: Manifest) -> Iterator[Manifest]:
    pod = _pod_spec(manifest)
    assert pod is not None
    yield from pod["containers"]


def _assert_restricted(manifest: Manifest) -> None:
    pod = _pod_spec(manifest)
    assert pod is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in _containers(manifest):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}


def _server(rendered: tuple[str, list[Manifest]]) -> tuple[str, dict[tuple[str, str], Manifest]]:
    name, manifests = rendered
    return name, _by_kind(manifests)


def test_servers_are_probed_restricted_and_budgeted(rendered: tuple[str, list[Manifest]]) -> None:
    name, objects = _server(rendered)
    deployment = objects[("Deployment", f"ohttp-{name}")]
    _assert_restricted(deployment)
    _assert_restricted(objects[("Deployment", "ohttp-redis")])
    (container,) = _containers(deployment)
    assert container["args"] == [name]  # one image, any subcommand
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"] == "ohttp:0.1.0"
    budget = objects[("PodDisruptionBudget", f"ohttp-{name}")]
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert objects[("Service", f"ohttp-{name}")]["spec"]["selector"] == selector
    # The Redis NetworkPolicy admits the server's pods.
    policy = objects[("NetworkPolicy", "ohttp-redis")]
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_gateway_runs_three_replicas_on_one_read_only_key_secret() -> None:
    objects = _by_kind(render(KUBERNETES / "gateway"))
    deployment = objects[("Deployment", "ohttp-gateway")]
    assert deployment["spec"]["replicas"] == 3
    pod = _pod_spec(deployment)
    assert pod is not None
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["keys"]["secret"]["secretName"] == "ohttp-gateway-keys"
    (container,) = _containers(deployment)
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["keys"]["readOnly"] is True
    assert "subPath" not in mounts["keys"]  # an updated Secret reaches the file (rotation)
    config = objects[("ConfigMap", "ohttp-gateway")]["data"]
    assert config["OHTTP_GATEWAY_KEYS"] == f"{mounts['keys']['mountPath']}/keys.json"
    assert config["OHTTP_GATEWAY_STATE"] == "redis://ohttp-redis:6379/0"
    assert ("Service", "ohttp-redis") in objects


def test_the_relay_kustomization_holds_nothing_of_the_gateway() -> None:
    gateway_objects = render(KUBERNETES / "gateway")
    relay_objects = render(KUBERNETES / "relay")
    assert {m["metadata"]["namespace"] for m in relay_objects} == {"ohttp-relay"}
    assert {m["metadata"]["namespace"] for m in gateway_objects} == {"ohttp-gateway"}
    text = yaml.safe_dump_all(relay_objects)
    assert "ohttp-gateway-keys" not in text
    assert "OHTTP_GATEWAY_" not in text


# --- The ConfigMaps hold real settings ---------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "prefix", "options", "load"),
    [
        ("gateway", "OHTTP_GATEWAY_", gateway.config._OPTIONS, gateway.config.load_config),
        ("relay", "OHTTP_RELAY_", relay.config._OPTIONS, relay.config.load_config),
    ],
)
def test_configmaps_name_only_real_settings_that_load(
    name: str, prefix: str, options: Any, load: Any
) -> None:
    data = _by_kind(render(KUBERNETES / name))[("ConfigMap", f"ohttp-{name}")]["data"]
    names = {key.removeprefix(prefix).lower() for key in data}
    assert all(key.startswith(prefix) for key in data)
    assert names <= set(options), names - set(options)
    load({}, environ=data)  # raises on a value the server would refuse


# --- systemd -------------------------------------------------------------------------------------

HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "Restart": "on-failure",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
}


def _service_section(path: Path) -> dict[str, list[str]]:
    section = ""
    found: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("name", ["gateway", "relay"])
def test_systemd_units_are_hardened(name: str) -> None:
    service = _service_section(SYSTEMD / f"ohttp-{name}.service")
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert service["ExecStart"][0].startswith(f"/opt/ohttp/bin/ohttp {name}")
    stop = int(service["TimeoutStopSec"][0].removesuffix("s"))
    assert stop > 25  # past the servers' drain (--shutdown-timeout 25 s)


@pytest.mark.parametrize("name", ["gateway", "relay"])
def test_systemd_analyze_verifies_the_units(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the hardening keys are checked above")
    unit = tmp_path / f"ohttp-{name}.service"
    # verify wants the executable to exist: point it at this environment's `ohttp`.
    text = (SYSTEMD / unit.name).read_text().replace("/opt/ohttp/bin/ohttp", str(BIN / "ohttp"))
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
