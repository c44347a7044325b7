"""What we ship must serve: the wheel, installed non-editable into a fresh virtual environment and
started with its own `spine-cds serve` in a folder without the source tree, answers exactly as the
development install does.

Why this exists: the development .venv is an editable install that reads the source tree, so a
data file missing from the wheel (cards/questionnaires/*.json once was) passed every other test
while every installed copy answered 500 on any order that produced a card.

The wheel is built from a copy of the tracked files (never from the checkout, whose build/ folder
can hold files the source no longer has). The fresh environment gets the package from the wheel
only; its third-party dependencies are borrowed from the development .venv through a .pth line
(site-packages added that way has its own .pth files ignored, so the editable finder of the
checkout is not activated), which keeps the test offline and fast. The test checks that
cds_service, cards, criteria, fhir_mappings and terminology are imported from the fresh
environment.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import requests

from cds_service.data_files import DATA_FILES, shown_name
from cds_service.synthetic import synthesize
from tests.conftest import SERVICE_PATH
from tests.support.servers import ServerProcess
from tests.support.smoke import compare

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
STARTED_AT: dict[int, float] = {}
PACKAGES = ("cds_service", "cards", "criteria", "fhir_mappings", "terminology")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def source_data_files() -> set[str]:
    """Every non-Python file inside the packages, as the checkout holds it."""
    return {name for name in tracked_files()
            if name.split("/", 1)[0] in PACKAGES and not name.endswith((".py", ".pyc"))}


def build_wheel(out: Path) -> Path:
    source = out / "source"
    for name in tracked_files():
        if name.split("/", 1)[0] in PACKAGES or name in ("pyproject.toml", "README.md"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (out / "dist").glob("spine_cds-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    """A fresh venv holding the wheel; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel)], check=True, capture_output=True, timeout=300)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_spine_cds_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("CDS_")}
    return {**env, "CDS_AUTH": "off", "CDS_VAR_DIR": str(workdir / "var"), **extra}


def serve(python: Path, workdir: Path, **extra: str) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    # As in the image (home /nonexistent, read-only root): a $HOME nothing can be created under.
    (workdir / "home-is-a-file").write_text("")
    extra.setdefault("HOME", str(workdir / "home-is-a-file" / "home"))
    spine_cds = python.with_name("spine-cds")
    server = ServerProcess.start(
        lambda port: [str(spine_cds), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        ready_path="/healthz", env=clean_env(workdir, **extra), cwd=workdir, timeout=60)
    STARTED_AT[server.pid] = time.monotonic()
    return server


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    base = tmp_path_factory.mktemp("installed")
    python = install(wheel, base / "venv")
    server = serve(python, base / "run")
    yield python, server
    server.stop()


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    # Data files, and modules in folders that are no regular package (migrations/versions/*.py).
    held = set(zipfile.ZipFile(wheel).namelist())
    assert {name for name in tracked_files() if name.split("/", 1)[0] in PACKAGES} - held == set()


def test_the_data_file_list_names_every_data_file_of_the_tree():
    # A data file the list does not name would not be checked by /readyz; a listed file the tree
    # lacks would make every copy unready.
    listed = {shown_name(package, name) for package, names in DATA_FILES.items() for name in names}
    assert listed == source_data_files()


def test_the_installed_copy_is_imported_from_its_own_environment(installed):
    python, _ = installed
    where = subprocess.run([str(python), "-c", "import sys, importlib; print('\\n'.join(importlib.import_module(p).__file__ "
                            f"for p in {PACKAGES!r}))"], capture_output=True, text=True, check=True, cwd="/",
                           env=clean_env(Path("/tmp"))).stdout.split()
    venv = python.parent.parent
    assert len(where) == len(PACKAGES) and all(Path(f).is_relative_to(venv) for f in where), where


def test_the_installed_copy_answers_as_the_development_install(installed, service):
    _, copy = installed
    assert compare(service.url, copy.url) == []


def test_a_missing_data_file_makes_an_installed_copy_unready_not_500(wheel, tmp_path):
    python = install(wheel, tmp_path / "venv")
    site = Path(subprocess.run([str(python), "-c", "import cards, os; print(os.path.dirname(os.path.dirname(cards.__file__)))"],
                               capture_output=True, text=True, check=True, env=clean_env(tmp_path), cwd=tmp_path).stdout.strip())
    assert site.is_relative_to(tmp_path / "venv"), site   # never delete a file of the checkout
    body = synthesize("fusion-pt-missing", 1, 7)[0].request
    with serve(python, tmp_path / "run") as server:
        assert requests.get(server.url + "/readyz", timeout=30).status_code == 200
        (site / "cards" / "questionnaires" / "spine-pt-course.json").unlink()
        ready = requests.get(server.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"]["data"] == "failed: cards/questionnaires/spine-pt-course.json is missing"
        answer = requests.post(server.url + SERVICE_PATH, json=body, timeout=60)
        assert answer.status_code == 503, answer.text[:500]
        assert "cards/questionnaires/spine-pt-course.json is missing" in answer.text
        assert answer.json()["resourceType"] == "OperationOutcome" and int(answer.headers["Retry-After"]) > 0
    # A rule file removed before the start: the copy starts (no crash loop) and says which file.
    (site / "criteria" / "rules" / "si_fusion.yaml").unlink()
    with serve(python, tmp_path / "run2") as server:
        ready = requests.get(server.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert "criteria/rules/si_fusion.yaml is missing" in ready.json()["checks"]["data"]
        assert requests.post(server.url + SERVICE_PATH, json=body, timeout=60).status_code == 503
        assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_a_clean_start_logs_no_error(installed):
    _, copy = installed
    # gunicorn's control-socket thread reports its failure a few seconds after the workers boot.
    time.sleep(max(0.0, STARTED_AT[copy.pid] + 8 - time.monotonic()))
    log = copy.output_tail(20000)
    assert "spine-cds listening on" in log
    assert not re.search(r"\bERROR\b|Traceback|\[ERROR\]", log), log


def test_a_read_only_database_folder_is_one_line_naming_the_setting(installed, tmp_path):
    python, _ = installed
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")   # as root, a chmod cannot make a folder read-only; a file in the way can
    run = subprocess.run([str(python.with_name("spine-cds")), "serve", "--port", "9"], capture_output=True, text=True,
                         env=clean_env(tmp_path, CDS_VAR_DIR=str(blocker / "var")), cwd=tmp_path, timeout=60)
    assert run.returncode != 0
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "CDS_DATABASE_URL" in lines[0] and "Traceback" not in run.stderr, lines
