"""The Helm chart (dist/helm/frontier-gevent), rendered by a real Helm: Helm's own Go
SDK (v4), which the ``helm-python-sdk`` wheel bundles as a shared library (no ``helm``
binary installs from the package registries here). Every rendered object is validated
against the Kubernetes schemas (``kubernetes-validate``), the configs it renders are
loaded by our config loaders and run for real, and every ServiceMonitor is scraped on
the process it points at. No cluster runs here: ``helm install`` itself is not run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from frontier.config import load_config as load_frontier_config
from frontlas.config import load_config as load_frontlas_config
from tests.deploy.conftest import run_cluster
from tests.deploy.test_k8s import SERVICE_MONITOR, VERSIONS
from tests.e2e.proc_tools import ROOT

CHART = ROOT / "dist" / "helm" / "frontier-gevent"

#: values that turn on everything the chart can render
EVERYTHING = {
    "frontier": {
        "tls": {
            "edgebound": {"enabled": True, "secret": "edge-tls", "mtls": True, "caSecret": "edge-ca"},
            "servicebound": {"enabled": True, "secret": "service-tls"},
            "controlplane": {"enabled": True, "secret": "control-tls"},
        },
        "edgeAuthSecret": "edge-auth",
        "controlplane": {"tokensSecret": "cp-tokens"},
        "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12},
        "service": {"edgebound": {"type": "LoadBalancer", "annotations": {"example.com/lb": "nlb"}}},
        "config": {"limits": {"max_connections": 50000}, "exchange": {"hashby": "srcip"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
    "frontlas": {
        "tls": {"plane": {"enabled": True, "secret": "plane-tls", "caSecret": "plane-ca"}},
        "redis": {"passwordSecret": "redis-pass"},
    },
}


def render(values: dict[str, Any] | None = None, name: str = "fg", namespace: str = "edge") -> list[dict[str, Any]]:
    """The chart rendered by Helm, as Kubernetes objects."""
    with helm_python.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def validate(doc: dict[str, Any], version: str) -> None:
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        jsonschema.validate(doc, SERVICE_MONITOR)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


def test_helm_lint_finds_nothing_wrong():
    report = helm_python.lint(str(CHART), strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] > 1] == [], report  # 1 is INFO ("icon is recommended")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", [{}, EVERYTHING, {"redis": {"enabled": False}, "serviceMonitor": {"enabled": False},
                                                     "frontier": {"controlplane": {"enabled": False}}}],
                         ids=["defaults", "everything", "minimal"])
def test_every_rendered_object_is_a_valid_kubernetes_object(version, values):
    docs = render(values)
    for doc in docs:
        validate(doc, version)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds.count("Deployment") == (2 if values.get("redis", {}).get("enabled") is False else 3), kinds
    assert kinds.count("PodDisruptionBudget") == 2
    assert kinds.count("ServiceMonitor") == (0 if values.get("serviceMonitor") else 2)
    assert kinds.count("HorizontalPodAutoscaler") == (1 if values is EVERYTHING else 0)


def test_the_validators_catch_mistakes():
    docs = render()
    deployment = copy.deepcopy(by_kind(docs, "Deployment")["fg-frontier-gevent-frontier"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, VERSIONS[0])
    with pytest.raises(helm_python.HelmError, match="tls.edgebound.secret"):
        render({"frontier": {"tls": {"edgebound": {"enabled": True}}}})
    # values.schema.json: a misspelled or mistyped value stops the render, naming it
    with pytest.raises(helm_python.HelmError, match="replica"):
        render({"frontier": {"replica": 3}})
    with pytest.raises(helm_python.HelmError, match="edgebound"):
        render({"frontier": {"service": {"edgebound": {"type": "Ingress"}}}})


def _objects_fit_each_other(docs: list[dict[str, Any]]) -> None:
    """Selectors select, probes and Service ports name container ports, volumes exist."""
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for name, dep in deployments.items():
        assert selects(dep["spec"]["selector"]["matchLabels"], pods[name]), name
        spec = dep["spec"]["template"]["spec"]
        volumes = {v["name"] for v in spec["volumes"]}
        for container in spec["containers"]:
            ports = {p["name"] for p in container["ports"]}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                get = container.get(probe, {}).get("httpGet")
                if get:
                    assert get["port"] in ports, (name, probe)
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, name
    for name, svc in services.items():
        targets = [d for d, labels in pods.items() if selects(svc["spec"]["selector"], labels)]
        assert len(targets) == 1, (name, targets)
        container_ports = {p["name"] for c in deployments[targets[0]]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= container_ports, name
    for name, pdb in {**by_kind(docs, "PodDisruptionBudget")}.items():
        assert any(selects(pdb["spec"]["selector"]["matchLabels"], labels) for labels in pods.values()), name
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments, name
        assert "replicas" not in deployments[hpa["spec"]["scaleTargetRef"]["name"]]["spec"]  # the HPA owns it
    for name, monitor in by_kind(docs, "ServiceMonitor").items():
        chosen = [s for s in services.values() if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert len(chosen) == 1, (name, [s["metadata"]["name"] for s in chosen])
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in chosen[0]["spec"]["ports"]}


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_objects_refer_to_each_other_consistently(values):
    _objects_fit_each_other(render(values))


def _config(docs: list[dict[str, Any]], component: str) -> str:
    return by_kind(docs, "ConfigMap")[f"fg-frontier-gevent-{component}"]["data"][f"{component}.yaml"]


def _with_files_at(text: str, root: Path) -> str:
    """``text`` with the chart's TLS mount root moved under ``root``, every file it
    names created there (the loader checks that TLS files exist)."""
    moved = text.replace(TLS_ROOT, str(root))
    for line in moved.splitlines():
        value = line.split(":", 1)[-1].strip(" -")
        if value.startswith(str(root)):
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).write_text("PEM")
    return moved


#: where the chart mounts the TLS Secrets
TLS_ROOT = "/etc/frontier/tls"


def test_rendered_configs_load_without_warnings_and_fit_the_pods(tmp_path: Path):
    docs = render(EVERYTHING)
    frontier_text, frontlas_text = _config(docs, "frontier"), _config(docs, "frontlas")
    frontier_path, frontlas_path = tmp_path / "frontier.yaml", tmp_path / "frontlas.yaml"
    frontier_path.write_text(_with_files_at(frontier_text, tmp_path / "tls"))
    frontlas_path.write_text(_with_files_at(frontlas_text, tmp_path / "tls"))
    warnings: list[str] = []
    # the Secrets' values arrive as the environment the Deployment names
    env = {"FRONTIER__EDGEBOUND__AUTH__SECRETS": "[a-secret-of-at-least-16-chars]"}
    config = load_frontier_config(str(frontier_path), env=env, warn=warnings.append)
    assert warnings == []
    assert config.limits.max_connections == 50000 and config.exchange.hashby == "srcip"  # frontier.config merged
    assert config.edgebound.auth.enable and config.observability.enable and config.frontlas.enable
    assert config.edgebound.listen.tls.mtls and config.servicebound.listen.tls.enable and config.controlplane.listen.tls.enable
    assert config.frontlas.dial.addrs == ("fg-frontier-gevent-frontlas.edge.svc:40012",)

    deployment = by_kind(docs, "Deployment")["fg-frontier-gevent-frontier"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["observability"] == int(config.observability.addr.rsplit(":", 1)[1])
    assert ports["edge"] == config.edgebound.listen.host_port[1] and ports["control"] == config.controlplane.listen.host_port[1]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "observability"}
    env_names = {e["name"] for e in container["env"]}
    assert {"FRONTIER__EDGEBOUND__AUTH__SECRETS", "FRONTIER__CONTROLPLANE__AUTH__BEARER_TOKENS"} <= env_names
    # every TLS file the config names lies in a directory a Secret is mounted at
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    named = [line.split(":", 1)[-1].strip(" -") for line in frontier_text.splitlines() if TLS_ROOT in line]
    assert len(named) == 8, named  # 3 listeners' cert+key, the edge CA, the plane CA
    for path in named:
        assert str(Path(path).parent) in mounts, path
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(container["lifecycle"]["preStop"]["exec"]["command"][1]) + config.limits.drain_timeout

    fl = load_frontlas_config(str(frontlas_path), env={}, warn=warnings.append)
    assert warnings == []
    assert fl.frontier_plane.listen.tls.enable and fl.observability.addr == "0.0.0.0:9092"
    assert fl.redis.standalone.addr == "fg-redis:6379"  # the bundled Redis' Service
    assert "fg-redis" in by_kind(docs, "Service")
    fl_container = by_kind(docs, "Deployment")["fg-frontier-gevent-frontlas"]["spec"]["template"]["spec"]["containers"][0]
    assert {m["mountPath"] for m in fl_container["volumeMounts"]} >= {TLS_ROOT + "/plane"}
    assert "FRONTLAS__REDIS__PASSWORD" in {e["name"] for e in fl_container["env"]}


def test_the_default_release_runs_and_its_monitors_scrape_for_real(installed, tmp_path: Path):
    docs = render()
    env = {"POD_NAME": "fg-frontier-gevent-frontier-7d9f-abcde", "FRONTIER__DAEMON__FRONTIER_ID": "fg-frontier-gevent-frontier-7d9f-abcde"}
    with run_cluster(installed, tmp_path, _config(docs, "frontier"), _config(docs, "frontlas"), frontier_env=env) as cluster:
        assert cluster.frontier_id == env["FRONTIER__DAEMON__FRONTIER_ID"]
        local = {9091: cluster.probes, 9092: cluster.frontlas_probes}
        services = by_kind(docs, "Service")
        deployments = by_kind(docs, "Deployment")
        expected = {"frontier": "frontier_edges_connected", "frontlas": "frontlas_frontiers"}
        for name, monitor in by_kind(docs, "ServiceMonitor").items():
            selector = monitor["spec"]["selector"]["matchLabels"]
            service = next(s for s in services.values() if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items()))
            for endpoint in monitor["spec"]["endpoints"]:
                target = next(p["targetPort"] for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
                pod = next(d for d in deployments.values()
                           if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items()))
                port = next(p["containerPort"] for p in pod["spec"]["template"]["spec"]["containers"][0]["ports"] if p["name"] == target)
                text = requests.get(f"http://{local[port]}{endpoint['path']}", timeout=10).text
                families = {f.name for f in text_string_to_metric_families(text)}
                assert expected[selector["app.kubernetes.io/name"]] in families, name
        for component, addr in (("frontier", cluster.probes), ("frontlas", cluster.frontlas_probes)):
            container = deployments[f"fg-frontier-gevent-{component}"]["spec"]["template"]["spec"]["containers"][0]
            for probe in ("livenessProbe", "readinessProbe"):
                assert requests.get(f"http://{addr}{container[probe]['httpGet']['path']}", timeout=10).status_code == 200
