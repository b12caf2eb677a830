"""`deploy/`: parsed and cross-checked against the code, since neither Docker nor Kubernetes runs here.

Ports, probe paths, labels and selectors, the service account, the security context, the grace period against
the daemon's shutdown grace, the ConfigMap's configuration (loaded by the real loader), the custom role's
actions, the systemd unit, and the operations guide naming every daemon key and metric.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.config import load_config
from reconciler.daemon import DaemonSettings, LeaseSettings, ThrottleSettings, daemon_settings
from reconciler.metrics import Metrics
from reconciler.server import DEFAULT_PORT, HEALTH_PATH, METRICS_PATH, READY_PATH, ROUTES

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"


# ---------------------------------------------------------------------------------------------- Dockerfile


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, args = (pending + line).partition(" ")
        out.append((instruction.upper(), args.strip()))
        pending = ""
    assert not pending, "dangling line continuation"
    return out


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile(DEPLOY / "Dockerfile")


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    return instructions[starts[-1]:]


def test_dockerfile_slim_base_and_no_remote_add(docker: list[tuple[str, str]]) -> None:
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for ins, a in docker if ins == "ARG" and "=" in a}
    bases = [a.split()[0] for ins, a in docker if ins == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.match(r"^python:3\.11-slim", resolved), resolved
    assert not [a for ins, a in docker if ins == "ADD"], "COPY only: no ADD, so no remote URLs or archives"
    assert not re.search(r"https?://", " ".join(a for ins, a in docker if ins in ("RUN", "COPY")))


def test_dockerfile_runs_amlfw_daemon_as_non_root_with_a_healthcheck(docker: list[tuple[str, str]]) -> None:
    final = final_stage(docker)
    users = [a for ins, a in final if ins == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "numeric, so Kubernetes runAsNonRoot can verify it"
    assert int(uid) > 0
    after_user = final[[i for i, (ins, _) in enumerate(final) if ins == "USER"][-1]:]
    assert not [a for ins, a in after_user if ins == "RUN"], "nothing runs as root after USER"
    entrypoint = json.loads(next(a for ins, a in final if ins == "ENTRYPOINT"))
    assert entrypoint == ["amlfw", "daemon"]
    cmd = json.loads(next(a for ins, a in final if ins == "CMD"))
    assert cmd[cmd.index("--config") + 1] == "/etc/amlfw/config.yaml"
    assert cmd[cmd.index("--listen") + 1] == f"0.0.0.0:{DEFAULT_PORT}"
    assert [a for ins, a in final if ins == "EXPOSE"] == [str(DEFAULT_PORT)]
    healthcheck = next(a for ins, a in final if ins == "HEALTHCHECK")
    assert f"http://127.0.0.1:{DEFAULT_PORT}{HEALTH_PATH}" in healthcheck
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert probe[0] == "python", "the slim image has no curl: the probe is Python's urllib"


def test_dockerfile_installs_from_the_lock_and_ships_the_catalogue_in_the_wheel(docker: list[tuple[str, str]]) -> None:
    env = " ".join(a for ins, a in final_stage(docker) if ins == "ENV")
    assert "AMLFW_CATALOGUE_DIR" not in env, "the catalogue is package data: no override needed"
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "read-only root filesystem: no .pyc written at run time"
    assert any(ins == "COPY" and a.split()[0] == "config/catalogue" for ins, a in docker), "the wheel's catalogue"
    runs = [a for ins, a in docker if ins == "RUN"]
    assert any("--require-hashes" in a and "-r requirements.lock" in a for a in runs), "locked dependencies"
    assert any("pip install --no-deps ." in a for a in runs), "the project itself adds no unlocked dependency"
    lock = (DEPLOY / "requirements.lock").read_text()
    assert "azure-storage-blob==" in lock, "the image can hold the HA lease"
    assert all("--hash=sha256:" in block for block in lock.split("\n\n")[1:] if "==" in block)
    for ins, a in docker:
        if ins == "COPY" and not a.startswith("--from"):
            for source in shlex.split(a)[:-1]:
                assert (REPO / source).exists(), f"COPY source {source} is not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for needed in ("!pyproject.toml", "!README.md", "!LICENSE", "!reconciler/", "!config/catalogue/",
                   "!deploy/requirements.lock"):
        assert needed in ignore


# ---------------------------------------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "kustomization.yaml lists every manifest"
    docs: dict[str, dict[str, Any]] = {}
    for name in listed:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert doc["kind"] not in docs, f"one {doc['kind']} only"
            docs[doc["kind"]] = doc
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == kustomization["namespace"]
    assert set(docs) == {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
                         "PodDisruptionBudget", "NetworkPolicy"}
    assert kustomization["images"][0]["name"] == docs["Deployment"]["spec"]["template"]["spec"]["containers"][0][
        "image"]
    return docs


def pod(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = manifests["Deployment"]["spec"]["template"]["spec"]
    return spec


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [c] = pod(manifests)["containers"]
    return dict(c)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_labels_and_selectors_match(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert selects(manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], labels)
    assert selects(manifests["Service"]["spec"]["selector"], labels)
    assert selects(manifests["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"], labels)


def test_workload_identity_and_service_account(manifests: dict[str, dict[str, Any]]) -> None:
    sa = manifests["ServiceAccount"]
    assert pod(manifests)["serviceAccountName"] == sa["metadata"]["name"]
    assert re.match(r"^[0-9a-f-]{36}$", sa["metadata"]["annotations"]["azure.workload.identity/client-id"])
    assert manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod(manifests)["automountServiceAccountToken"] is False, "amlfw never talks to the Kubernetes API"


def test_ports_and_probes_match_the_server(manifests: dict[str, dict[str, Any]]) -> None:
    c = container(manifests)
    [port] = c["ports"]
    assert port["containerPort"] == DEFAULT_PORT
    args = c["args"]
    assert args[args.index("--listen") + 1] == f"0.0.0.0:{port['containerPort']}", "probes reach the pod address"
    for probe, path in (("livenessProbe", HEALTH_PATH), ("readinessProbe", READY_PATH)):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert get["path"] in ROUTES
        assert get["port"] in (port["name"], port["containerPort"])
    annotations = manifests["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/port"] == str(DEFAULT_PORT)
    [service_port] = manifests["Service"]["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    [ingress] = manifests["NetworkPolicy"]["spec"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == [port["containerPort"]]


def test_security_context_and_resources(manifests: dict[str, dict[str, Any]], docker: list[tuple[str, str]]) -> None:
    c = container(manifests)
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    pod_sc = pod(manifests)["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    uid = [a for ins, a in final_stage(docker) if ins == "USER"][-1].split(":")[0]
    assert pod_sc["runAsUser"] == int(uid), "the same UID as the image's USER"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(manifests)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a writable /tmp beside the read-only root"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])


def test_configmap_holds_a_valid_configuration_mounted_where_args_point(
        manifests: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cm = manifests["ConfigMap"]
    c = container(manifests)
    config_arg = Path(c["args"][c["args"].index("--config") + 1])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_arg.parent))
    volume = next(v for v in pod(manifests)["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    assert mount["readOnly"] is True
    path = tmp_path / config_arg.name
    path.write_text(cm["data"][config_arg.name], encoding="utf-8")
    config = load_config(path, CatalogueStore(REPO / "config" / "catalogue").get)
    assert config.targets
    assert all(t.credential.kind == "workload_identity" for t in config.targets)
    settings = daemon_settings(str(path), yaml.safe_load(path.read_text())["daemon"])
    grace = pod(manifests)["terminationGracePeriodSeconds"]
    assert grace > settings.shutdown_grace, "Kubernetes must not SIGKILL a write the daemon is letting finish"
    deployment = manifests["Deployment"]["spec"]
    if settings.lease is None:
        assert deployment["replicas"] == 1, "without a lease two replicas would both write"
        assert deployment["strategy"]["type"] == "Recreate"


def test_disruption_budget_and_network_policy(manifests: dict[str, dict[str, Any]]) -> None:
    pdb = manifests["PodDisruptionBudget"]["spec"]
    assert "minAvailable" not in pdb, "with one replica, minAvailable: 1 would block every node drain"
    assert pdb["maxUnavailable"] == 1
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    netpol = manifests["NetworkPolicy"]["spec"]
    assert set(netpol["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {(p["port"], p["protocol"]) for rule in netpol["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")}
    assert manifests["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---------------------------------------------------------------------------------------------- Azure role


EXPECTED_ACTIONS = {
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/providers/read",
    "Microsoft.Network/firewallPolicies/read",
    "Microsoft.Network/firewallPolicies/ruleCollectionGroups/read",
    "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
    "Microsoft.Network/firewallPolicies/ruleCollectionGroups/delete",
    "Microsoft.Network/locations/operations/read",
    "Microsoft.Network/locations/operationResults/read",
    "Microsoft.Network/routeTables/read",
    "Microsoft.Network/routeTables/routes/read",
    "Microsoft.Network/routeTables/routes/write",
    "Microsoft.Network/routeTables/routes/delete",
    "Microsoft.Network/ipGroups/read",
    "Microsoft.Network/ipGroups/join/action",
    "Microsoft.Network/locations/serviceTags/read",
    "Microsoft.MachineLearningServices/workspaces/outboundNetworkDependenciesEndpoints/read",
}


def test_custom_role_has_only_the_actions_amlfw_needs() -> None:
    role = json.loads((DEPLOY / "azure" / "amlfw-role.json").read_text())
    assert role["IsCustom"] is True
    assert set(role["Actions"]) == EXPECTED_ACTIONS
    assert len(role["Actions"]) == len(EXPECTED_ACTIONS)
    assert role["NotActions"] == role["DataActions"] == role["NotDataActions"] == []
    for action in role["Actions"]:
        assert "*" not in action
        assert re.match(r"^Microsoft\.\w+(/\w+)+/(read|write|delete|action)$", action), action
    assert not [a for a in role["Actions"] if a.startswith("Microsoft.Network/firewallPolicies/")
                and a.split("/")[2] in ("write", "delete")], "amlfw never writes the policy itself"
    assert all(re.match(r"^/subscriptions/[0-9a-f-]{36}$", s) for s in role["AssignableScopes"])


def test_role_script_is_valid_bash_and_uses_the_role_file() -> None:
    script = DEPLOY / "azure" / "assign-role.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "amlfw-role.json" in text
    assert "az role definition create" in text
    assert "az role assignment create" in text
    assert json.loads((DEPLOY / "azure" / "amlfw-role.json").read_text())["Name"] in text


# ---------------------------------------------------------------------------------------------- systemd


def unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's format: sections of `Key=value` lines, where a key may repeat."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"not Key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit() -> None:
    unit = unit_file(DEPLOY / "systemd" / "amlfw.service")
    assert set(unit) == {"Unit", "Service", "Install"}
    service = {k: v[-1] for k, v in unit["Service"].items()}
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/amlfw")
    assert argv[1:2] == ["daemon"]
    assert "--once" not in argv
    assert argv[argv.index("--listen") + 1] == f"127.0.0.1:{DEFAULT_PORT}"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > DaemonSettings().shutdown_grace
    assert service["DynamicUser"] == "yes", "never root"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "on-failure", "SIGTERM exits 0 and stays stopped"
    assert not [e for e in unit["Service"]["Environment"] if "AMLFW_CATALOGUE_DIR" in e], "the wheel has it"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


# ---------------------------------------------------------------------------------------------- docs


def test_operations_guide_names_every_daemon_key_metric_and_route() -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    keys = [f for f in DaemonSettings.__dataclass_fields__ if f not in ("throttle", "lease")]
    keys += [f"throttle.{f}" for f in ThrottleSettings.__dataclass_fields__]
    keys += [f"lease.{f}" for f in LeaseSettings.__dataclass_fields__]
    for key in keys:
        assert key.rsplit(".", 1)[-1] in guide, f"docs/operations.md does not mention daemon.{key}"
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert name in guide, f"docs/operations.md does not mention the metric {name}"
    for route in ROUTES:
        assert route in guide
    for path in ("deploy/Dockerfile", "deploy/kubernetes", "deploy/azure/amlfw-role.json",
                 "deploy/azure/assign-role.sh", "deploy/systemd/amlfw.service"):
        assert path in guide
        assert (REPO / path).exists()
