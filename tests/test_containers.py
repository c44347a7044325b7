"""docker/: the Dockerfile, compose.yaml and the Kubernetes manifests, checked offline against the code
(no Docker daemon needed): commands and options exist, probe paths are routes, ports agree, non-root."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from cds_service import auth
from cds_service.app import create_app
from cds_service.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


# ---------------------------------------------------------------- parsing helpers

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in (DOCKER / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def instructions(name: str) -> list[str]:
    return [args for keyword, args in dockerfile() if keyword == name]


def exec_form(args: str) -> list[str]:
    return json.loads(args[args.index("["):])


def interpolate(text: str) -> str:
    """Compose's ${VAR:-default} with the defaults (the environment of CI is not the deployer's)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def k8s(kind: str, name: str | None = None) -> dict:
    found = [d for d in k8s_documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> set[str]:
    app = create_app(environ={"CDS_VAR_DIR": str(tmp_path_factory.mktemp("routes")), "CDS_AUTH": "off"})
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


def exposed_port() -> int:
    (port,) = instructions("EXPOSE")
    return int(port)


def image_uid() -> int:
    (user,) = instructions("USER")
    return int(user.split(":")[0])  # numeric: Kubernetes' runAsNonRoot cannot check a name


# ---------------------------------------------------------------- Dockerfile

def test_image_is_multi_stage_on_python_slim_and_runs_unprivileged():
    bases = [args.split()[0] for args in instructions("FROM")]
    assert len(bases) >= 2 and set(bases) == {"python:3.11-slim"}
    assert image_uid() != 0
    assert "CDS_AUTH=required" in " ".join(instructions("ENV"))


def test_cmd_is_the_serve_command_with_real_options():
    (cmd,) = instructions("CMD")
    argv = exec_form(cmd)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get(argv[0]) == "cds_service.cli:main"
    serve = cli.commands[argv[1]]
    params = serve.make_context(argv[1], argv[2:]).params  # unknown options would raise here
    assert params["host"] == "0.0.0.0" and params["port"] == exposed_port()


def test_healthcheck_probes_a_real_route_with_python_only(routes, service):
    (healthcheck,) = instructions("HEALTHCHECK")
    argv = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"] and "curl" not in healthcheck
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", argv[2])
    assert int(url.group(1)) == exposed_port() and url.group(2) in routes
    # The same check, run against the test service: 0 when healthy, not 0 when nobody answers.
    here = argv[2].replace(f"127.0.0.1:{url.group(1)}", f"127.0.0.1:{service.port}")
    assert subprocess.run([sys.executable, "-c", here], capture_output=True, timeout=30).returncode == 0
    closed = argv[2].replace(f"127.0.0.1:{url.group(1)}", "127.0.0.1:9")
    assert subprocess.run([sys.executable, "-c", closed], capture_output=True, timeout=30).returncode != 0


def test_build_context_holds_what_the_dockerfile_copies():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "var"} <= ignored
    for args in instructions("COPY"):
        if args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (ROOT / source).exists() and source not in ignored, source
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {args.split()[0] for args in instructions("COPY")}
    assert {package.rstrip("*") for package in packages} <= copied  # a new top-level package needs a COPY


# ---------------------------------------------------------------- compose.yaml

def test_compose_runs_the_image_against_a_healthy_postgres_16():
    compose = yaml.safe_load(interpolate((DOCKER / "compose.yaml").read_text()))
    app, db = compose["services"]["spine-cds"], compose["services"]["postgres"]
    assert (DOCKER / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert db["image"].startswith("postgres:16") and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = sa.make_url(app["environment"]["CDS_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg" and url.host == "postgres"
    assert (url.username, url.password, url.database) == (
        db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_PASSWORD"], db["environment"]["POSTGRES_DB"])
    assert [int(p.rsplit(":", 1)[1]) for p in app["ports"]] == [exposed_port()]
    assert app["read_only"] is True and app["environment"]["PROMETHEUS_MULTIPROC_DIR"] in app["tmpfs"]
    source, target = app["volumes"][0].split(":")[:2]
    assert target == app["environment"]["CDS_TRUSTED_ISSUERS"]
    assert auth.load_issuers(str(DOCKER / source), ttl=1, min_refetch=1, timeout=1)  # a usable issuers file


# ---------------------------------------------------------------- Kubernetes

def container() -> dict:
    (spec,) = k8s("Deployment", "spine-cds")["spec"]["template"]["spec"]["containers"]
    return spec


def env(name: str) -> dict:
    (entry,) = [e for e in container()["env"] if e["name"] == name]
    return entry


def test_deployment_has_two_replicas_with_probes_on_real_routes(routes):
    deployment = k8s("Deployment", "spine-cds")
    assert deployment["spec"]["replicas"] == 2
    spec = container()
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http": exposed_port()}
    probes = {kind: spec[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in routes and ports.get(probe["port"], probe["port"]) == exposed_port()
    resources = spec["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_pods_run_unprivileged_on_a_read_only_root_filesystem():
    pod = k8s("Deployment", "spine-cds")["spec"]["template"]["spec"]
    spec = container()
    assert pod["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in spec["volumeMounts"] if m["name"] in empty_dirs}
    assert {"/tmp", env("PROMETHEUS_MULTIPROC_DIR")["value"]} <= writable


def test_configuration_comes_from_the_config_map_and_the_secret(tmp_path):
    pod = k8s("Deployment", "spine-cds")["spec"]["template"]["spec"]
    secret_ref = env("CDS_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    secret = k8s("Secret", secret_ref["name"])
    url = sa.make_url(secret["stringData"][secret_ref["key"]])
    assert url.drivername == "postgresql+psycopg"
    issuers_path = Path(env("CDS_TRUSTED_ISSUERS")["value"])
    (mount,) = [m for m in container()["volumeMounts"] if m["mountPath"] == str(issuers_path.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = k8s("ConfigMap", volume["configMap"]["name"])
    (item,) = [i for i in volume["configMap"]["items"] if i["path"] == issuers_path.name]
    issuers_file = tmp_path / "issuers.json"
    issuers_file.write_text(config_map["data"][item["key"]])
    assert auth.load_issuers(str(issuers_file), ttl=1, min_refetch=1, timeout=1)
    for entry in container()["env"]:
        ref = entry.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            assert ref["key"] in k8s("ConfigMap", ref["name"])["data"]


def test_service_and_autoscaler_target_the_deployment():
    deployment = k8s("Deployment", "spine-cds")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = k8s("Service", "spine-cds")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container()["ports"]}
    assert all(p["targetPort"] in port_names | {exposed_port()} for p in service["spec"]["ports"])
    hpa = k8s("HorizontalPodAutoscaler", "spine-cds")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]) == ("Deployment", "spine-cds")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["averageUtilization"] == 70
    assert hpa["spec"]["minReplicas"] >= deployment["spec"]["replicas"]
