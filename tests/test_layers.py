"""Data flows one way: request -> chart -> facts -> findings -> cards (import-linter layers)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_import_only_from_earlier_steps():
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_no_flask_below_the_service_layer():
    for package in ("fhir_mappings", "criteria", "cards", "terminology"):
        for path in (ROOT / package).rglob("*.py"):
            assert "flask" not in path.read_text().lower(), path
