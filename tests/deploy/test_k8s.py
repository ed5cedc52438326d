"""dist/k8s: every built-in object valid against the Kubernetes OpenAPI schemas
(kubernetes-validate's bundled copies, strict: unknown fields fail), the
ServiceMonitors checked against the fields of the Prometheus Operator's CRD that
they use, the objects consistent with each other and with the images, and the
ConfigMaps' configs run as a working frontier + Frontlas pair."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from frontier.config import load_config as load_frontier_config
from frontlas.config import load_config as load_frontlas_config
from tests.deploy.conftest import DOCKERFILES, instructions, only, run_cluster
from tests.e2e.proc_tools import ROOT

K8S = ROOT / "dist" / "k8s"
#: the oldest Kubernetes still commonly run, and the newest the validator knows
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

#: the part of monitoring.coreos.com/v1 ServiceMonitor (prometheus-operator's CRD)
#: these manifests use; no offline copy of the CRD's schema ships on PyPI
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "additionalProperties": False,
                             "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "namespaceSelector": {"type": "object", "additionalProperties": False,
                                      "properties": {"any": {"type": "boolean"},
                                                     "matchNames": {"type": "array", "items": {"type": "string"}}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["port"],
                    "properties": {"port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                                   "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                                   "scrapeTimeout": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                                   "scheme": {"enum": ["http", "https"]}}}},
            },
        },
    },
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_valid_kubernetes_objects(version):
    checked = 0
    for name, doc in documents():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(doc, SERVICE_MONITOR)
        else:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 14


def test_the_validators_catch_mistakes():
    deployment = copy.deepcopy(objects("Deployment")["frontier"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = deployment["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)
    monitor = copy.deepcopy(objects("ServiceMonitor")["frontier"])
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert {i["name"] for i in kustomization["images"]} == {"frontier-gevent", "frontlas-gevent"}


def _pod_labels() -> dict[str, dict[str, str]]:
    return {name: d["spec"]["template"]["metadata"]["labels"] for name, d in objects("Deployment").items()}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_objects_refer_to_each_other_consistently():
    deployments, services, configmaps = objects("Deployment"), objects("Service"), objects("ConfigMap")
    pods = _pod_labels()
    for name, dep in deployments.items():
        assert _selects(dep["spec"]["selector"]["matchLabels"], pods[name]), name
        pod = dep["spec"]["template"]["spec"]
        for container in pod["containers"]:
            port_names = {p["name"] for p in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                get = container.get(probe, {}).get("httpGet")
                if get:
                    assert get["port"] in port_names, (name, probe)
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, volume
    for name, svc in services.items():
        targets = [d for d, labels in pods.items() if _selects(svc["spec"]["selector"], labels)]
        assert len(targets) == 1, (name, targets)
        container_ports = {p["name"] for c in deployments[targets[0]]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (name, port)
    for name, pdb in objects("PodDisruptionBudget").items():
        assert any(_selects(pdb["spec"]["selector"]["matchLabels"], labels) for labels in pods.values()), name
    # each ServiceMonitor selects exactly one Service, which has the port it scrapes
    for name, monitor in objects("ServiceMonitor").items():
        chosen = [s for s in services.values() if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
                  and s["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]]
        assert len(chosen) == 1, (name, [s["metadata"]["name"] for s in chosen])
        ports = {p["name"] for p in chosen[0]["spec"]["ports"]}
        assert all(e["port"] in ports and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"]), name


def _monitored_container_port(monitor: dict[str, Any], port_name: str) -> int:
    """The containerPort a ServiceMonitor's endpoint ``port_name`` reaches: its
    Service's port of that name, then the target port on the selected Deployment."""
    service = next(s for s in objects("Service").values()
                   if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"]))
    target = next(p["targetPort"] for p in service["spec"]["ports"] if p["name"] == port_name)
    deployment = next(d for d, labels in _pod_labels().items() if _selects(service["spec"]["selector"], labels))
    return next(p["containerPort"] for p in _container(deployment)["ports"] if p["name"] == target)


def _config_addr(deployment: str, key: str) -> str:
    """The port of ``key`` (dotted path) in the config the deployment mounts."""
    node: Any = yaml.safe_load(_mounted_config(deployment)[1])
    for part in key.split("."):
        node = node[part]
    return node.rsplit(":", 1)[1]


def _container(deployment: str) -> dict[str, Any]:
    return objects("Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]


def _mounted_config(deployment: str) -> tuple[str, str]:
    """(path the container's --config names, the text mounted there from a ConfigMap)."""
    dep = objects("Deployment")[deployment]
    container = _container(deployment)
    config_path = container["args"][container["args"].index("--config") + 1]
    for mount in container["volumeMounts"]:
        volume = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
        if "configMap" in volume and config_path.startswith(mount["mountPath"].rstrip("/") + "/"):
            key = config_path[len(mount["mountPath"].rstrip("/")) + 1:]
            return config_path, objects("ConfigMap")[volume["configMap"]["name"]]["data"][key]
    raise AssertionError(f"{config_path} is not mounted from a ConfigMap in {deployment}")


def _env(deployment: str, pod_name: str) -> dict[str, str]:
    """The container's env as the kubelet builds it (fieldRefs and $(VAR) resolved)."""
    env: dict[str, str] = {}
    for var in _container(deployment).get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = pod_name
    return env


@pytest.mark.parametrize("name", ["frontier", "frontlas"])
def test_deployments_run_the_images_as_built(name):
    image_cmds = instructions(DOCKERFILES[name])
    container = _container(name)
    assert container["image"].split(":")[0] == f"{name}-gevent"
    assert container["args"] == list(only(image_cmds, "CMD").value)  # the image's ENTRYPOINT stays
    assert "command" not in container
    pod = objects("Deployment")[name]["spec"]["template"]["spec"]
    uid, gid = only(image_cmds, "USER").value[0].split(":")
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (int(uid), int(gid))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_frontier_probes_and_shutdown_fit_its_config(tmp_path):
    config_path, text = _mounted_config("frontier")
    assert config_path == "/usr/conf/frontier.yaml"
    path = tmp_path / "frontier.yaml"
    path.write_text(text)
    warnings: list[str] = []
    config = load_frontier_config(str(path), env=_env("frontier", "frontier-5c9d7-abcde"), warn=warnings.append)
    assert warnings == []
    assert config.daemon.frontier_id == "frontier-5c9d7-abcde"
    container = _container("frontier")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # probes on the control plane, which the config enables on that port
    assert config.controlplane.enable
    assert ports["control"] == int(config.controlplane.listen.addr.rsplit(":", 1)[1])
    assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == ("/readyz", "/healthz")
    assert ports["service"] == int(config.servicebound.listen.addr.rsplit(":", 1)[1])
    assert ports["edge"] == int(config.edgebound.listen.addr.rsplit(":", 1)[1])
    # SIGTERM drains: the kubelet waits long enough for preStop and the whole drain
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = objects("Deployment")["frontier"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(pre_stop[1]) + config.limits.drain_timeout + 5
    # it reports to the Frontlas Service, on its frontier-plane port
    frontlas_port = {p["name"]: p["port"] for p in objects("Service")["frontlas"]["spec"]["ports"]}["plane"]
    assert list(config.frontlas.dial.addrs) == [f"frontlas.frontier.svc:{frontlas_port}"]


def test_frontlas_config_fits_its_deployment(tmp_path):
    config_path, text = _mounted_config("frontlas")
    path = tmp_path / "frontlas.yaml"
    path.write_text(text)
    warnings: list[str] = []
    config = load_frontlas_config(str(path), env={}, warn=warnings.append)
    assert warnings == []
    ports = {p["name"]: p["containerPort"] for p in _container("frontlas")["ports"]}
    assert ports == {"api": int(config.control_plane.listen.addr.rsplit(":", 1)[1]),
                     "plane": int(config.frontier_plane.listen.addr.rsplit(":", 1)[1])}
    redis_port = objects("Service")["redis"]["spec"]["ports"][0]["port"]
    assert config.redis.standalone.addr == f"redis.frontier.svc:{redis_port}"


def test_configmaps_run_a_working_cluster(installed, tmp_path):
    _, frontier_yaml = _mounted_config("frontier")
    _, frontlas_yaml = _mounted_config("frontlas")
    env = _env("frontier", "frontier-5c9d7-abcde")
    with run_cluster(installed, tmp_path, frontier_yaml, frontlas_yaml, frontier_env=env) as cluster:
        assert cluster.frontier_id == "frontier-5c9d7-abcde"
        # every ServiceMonitor endpoint, followed to the container port it lands on, is
        # scraped for real on the process that listens there
        local = {int(_config_addr("frontier", "controlplane.listen.addr")): cluster.control,
                 int(_config_addr("frontlas", "control_plane.listen.addr")): cluster.api}
        expected = {"frontier": "frontier_edges_connected", "frontlas": "frontlas_frontiers"}
        for name, monitor in objects("ServiceMonitor").items():
            for endpoint in monitor["spec"]["endpoints"]:
                port = _monitored_container_port(monitor, endpoint["port"])
                text = requests.get(f"http://{local[port]}{endpoint['path']}", timeout=10).text
                families = {f.name for f in text_string_to_metric_families(text)}
                assert expected[name] in families, (name, sorted(families)[:20])
        assert "frontlas_frontiers 1.0" in requests.get(f"http://{cluster.api}/metrics", timeout=10).text
