"""The deployment artifacts, validated offline (no Docker engine or cluster here):
docker-compose.yml against the Compose specification, the Dockerfile's properties, every
object `kubectl kustomize` renders for both overlays against the Kubernetes schemas, and
every metric the alert rules and the Grafana dashboard use against what the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from localnet.svm import ROOT

K8S_VERSION = "1.32.0"
SERVICES = ("vault-manager", "balance-tracker", "cpi-manager", "monitor", "gateway")
CHAIN_SERVICES = SERVICES[:4]
CLUSTER_SETTINGS = ("VAULT_PROGRAM_ID", "POSITION_MANAGER_ID", "USDT_MINT", "GENESIS_HASH")
PLACEHOLDER = re.compile(r"replace[-_ ]?me|change[-_ ]?me|changeit|placeholder|todo|fixme|xxx+|<[a-z -]+>", re.I)


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves YAML merge keys as Compose does


def test_compose_file_follows_the_compose_specification() -> None:
    data = {k: v for k, v in compose().items() if not k.startswith("x-")}
    spec = PyCompose.from_json(json.dumps(data))
    spec.validate()
    assert set(SERVICES) <= set(spec.service_names())
    assert {"postgres", "redis", "validator", "prometheus", "grafana"} <= set(spec.service_names())


def test_compose_health_checks_and_dependencies() -> None:
    services = compose()["services"]
    for name in SERVICES:
        assert "healthcheck" in services[name], name
    for name in ("vault-manager", "balance-tracker", "cpi-manager", "monitor"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        assert deps["chain-setup"]["condition"] == "service_completed_successfully"
    assert services["chain-setup"]["depends_on"]["validator"]["condition"] == "service_healthy"
    assert all(v["condition"] == "service_healthy" for v in services["gateway"]["depends_on"].values())


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) >= 2 and all(":" in b and not b.endswith(":latest") for b in bases)
    assert re.search(r"^USER 10001$", text, re.M)


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/k8s (scripts/bootstrap.sh installs it)"
    out = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
                         check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_objects_validate_against_the_schemas(overlay: str) -> None:
    import kubernetes_validate

    docs = render(overlay)
    kinds = [d["kind"] for d in docs]
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):  # a CRD: not in the core schemas
            assert doc["kind"] == "ServiceMonitor" and doc["spec"]["endpoints"][0]["port"] == "metrics"
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert kinds.count("Deployment") == 5 and kinds.count("PodDisruptionBudget") == 5
    namespace = next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]
    assert all(d["metadata"].get("namespace", namespace) == namespace for d in docs if d["kind"] != "Namespace")
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert "readinessProbe" in container and "livenessProbe" in container
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["resources"]["limits"]
        volumes = {v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
        mounts = [m["name"] for m in container.get("volumeMounts", [])]
        assert set(mounts) <= volumes and len(mounts) == len(set(mounts)), deployment["metadata"]["name"]
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert scaled == {"vault-manager", "cpi-manager", "gateway"}  # stateless services only
    indexer = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "balance-tracker")
    assert "standby" in indexer["metadata"]["annotations"]["collateral-vault/indexer"]
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    open_to_all = [n for n, p in policies.items() for rule in p.get("ingress", []) if "from" not in rule]
    assert open_to_all == ["gateway-from-anywhere"]  # only the gateway is reachable from outside


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _mounted(docs: list[dict[str, Any]], name: str, path: str) -> str:
    """The Secret mounted where `path` lies in deployment `name`'s container."""
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    spec = deployment["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    return volume["secret"]["secretName"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_committed_secret_and_no_placeholder(overlay: str) -> None:
    """Secrets are referenced by name (created outside the repository), never committed."""
    docs = render(overlay)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    text = yaml.safe_dump_all(docs)
    assert not PLACEHOLDER.findall(text), PLACEHOLDER.findall(text)


def test_the_prod_overlay_names_the_cluster_and_runs_tls_and_authentication() -> None:
    """Issue 21 finding 9: the prod overlay set no program ids or mint (every service fell back
    to the development ids) and carried the base's REPLACE-ME database password."""
    from vault_client.config import DEVELOPMENT_KEYS

    docs = render("prod")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "collateral-vault-config")
    data = config["data"]
    assert data["CV_PROFILE"] == "production"
    assert {"GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_AUTH_FILE", "GRPC_HEALTH_PORT"} <= set(data)
    rendered = {d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    for name in CHAIN_SERVICES:
        container = _container(docs, name)
        env = {e["name"]: e for e in container["env"]}
        for setting in CLUSTER_SETTINGS:  # each named, read from the operator's ConfigMap, required
            source = env[setting]["valueFrom"]["configMapKeyRef"]
            assert source["key"] == setting and not source.get("optional", False)
            assert source["name"] == "collateral-vault-cluster" and source["name"] not in rendered
            assert str(env[setting].get("value", "")) not in DEVELOPMENT_KEYS
        assert {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e} == {
            "collateral-vault-secrets"}
        assert _mounted(docs, name, data["GRPC_TLS_CERT"]) == _mounted(docs, name, data["GRPC_TLS_KEY"]) \
            == "collateral-vault-grpc-tls"
        assert _mounted(docs, name, data["GRPC_AUTH_FILE"]) == "collateral-vault-grpc-auth"
        health = int(data["GRPC_HEALTH_PORT"])  # probes speak plaintext gRPC to the health-only port
        assert container["readinessProbe"]["grpc"]["port"] == container["livenessProbe"]["grpc"]["port"] == health
    gateway = _container(docs, "gateway")
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert _mounted(docs, "gateway", env["GRPC_CA_FILE"]) == "collateral-vault-grpc-tls"
    assert _mounted(docs, "gateway", env["GRPC_TOKEN_FILE"]) == "collateral-vault-gateway-token"


def exported_metrics() -> set[str]:
    import prometheus_client

    import services.balance_tracker.indexer.follower
    import services.balance_tracker.reconcile
    import services.common.grpc_metrics
    import services.common.metrics
    import services.monitor.watcher  # noqa: F401

    names: set[str] = set()
    for metric in prometheus_client.REGISTRY.collect():
        names.add(metric.name)
        names |= {f"{metric.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum")}
    return names


def referenced_metrics(expressions: list[str]) -> set[str]:
    words = set()
    functions = {"sum", "rate", "max", "min", "by", "increase", "histogram_quantile", "le", "service", "kind",
                 "part", "code", "avg", "count"}
    for expr in expressions:
        expr = re.sub(r"\{[^}]*\}", "", expr)
        expr = re.sub(r"\[[^\]]*\]", "", expr)
        words |= {w for w in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr) if w not in functions}
    return words


def test_alert_rules_and_dashboard_use_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "IndexerLagging", "ReconciliationMismatch", "GrpcServerErrors"}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "collateral-vault.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for needed in ("TVL", "Deposits and withdrawals per minute", "latency", "Indexer lag"):
        assert needed in titles
    missing = referenced_metrics(exprs) - exported_metrics() - {"e6"}
    assert not missing, f"metrics not exported by the code: {missing}"
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == ["vault-manager:9101", "balance-tracker:9102", "cpi-manager:9103", "monitor:9104"]


def test_ports_agree_with_the_configuration_defaults() -> None:
    """The well-known ports a service listens on when none is set (vault_client/config.py's
    SERVICE_PORTS and GATEWAY_PORT) are the ones compose publishes and health-checks, the
    gateway's backend addresses, the Kubernetes containers, Services, addresses and network
    policies, and Prometheus' scrape targets: one changed alone would leave a service
    unreachable or unscraped, with every file still valid."""
    from vault_client.config import GATEWAY_PORT, SERVICE_PORTS

    ports = {service.replace("_", "-"): known for service, known in SERVICE_PORTS.items()}
    assert set(ports) == set(CHAIN_SERVICES)
    services = compose()["services"]
    for name, (grpc, _) in ports.items():
        assert services[name]["ports"] == [f"127.0.0.1:{grpc}:{grpc}"], name
        assert services[name]["healthcheck"]["test"][-1] == f"127.0.0.1:{grpc}", name
    gateway = services["gateway"]
    assert gateway["ports"] == [f"127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}"]
    assert f"//127.0.0.1:{GATEWAY_PORT}/healthz" in gateway["healthcheck"]["test"][-1]
    addresses = {f"{n.upper().replace('-', '_')}_ADDR": f"{n}:{grpc}" for n, (grpc, _) in ports.items()}
    assert {k: v for k, v in gateway["environment"].items() if k.endswith("_ADDR")}.items() <= addresses.items()

    docs = render("dev")
    by_kind: dict[tuple[str, str], dict[str, Any]] = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    expected = {name: {"grpc": grpc, "metrics": metrics} for name, (grpc, metrics) in ports.items()}
    for name, named in expected.items():
        container = _container(docs, name)
        assert {p["name"]: p["containerPort"] for p in container["ports"] if p["name"] in named} == named, name
        service = by_kind[("Service", name)]["spec"]["ports"]
        assert {p["name"]: p["port"] for p in service} == named, name
    assert {p["name"]: p["containerPort"] for p in _container(docs, "gateway")["ports"]} == {"http": GATEWAY_PORT}
    config = by_kind[("ConfigMap", "collateral-vault-config")]["data"]
    assert {k: v for k, v in config.items() if k.endswith("_ADDR")} == addresses

    def policy_ports(name: str) -> set[int]:
        return {p["port"] for rule in by_kind[("NetworkPolicy", name)]["spec"]["ingress"] for p in rule["ports"]}

    assert policy_ports("grpc-from-the-system") == {grpc for grpc, _ in ports.values()}
    assert policy_ports("metrics-from-monitoring") == {metrics for _, metrics in ports.values()}
    assert policy_ports("gateway-from-anywhere") == {GATEWAY_PORT}

    scraped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in scraped["scrape_configs"] for group in job.get("static_configs", [])
               for t in group["targets"]}
    assert {f"{name}:{metrics}" for name, (_, metrics) in ports.items()} <= targets
