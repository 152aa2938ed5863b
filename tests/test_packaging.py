"""The package as a user installs it: a wheel built from this checkout holds every module of the
source tree and the shipped tuning records, and a build finds those records from the installed
package, run from another working directory."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tir_armq.database import SHIPPED_ROOT
from tir_armq.paths import repo_root

REPO = repo_root()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True)
    (path,) = out.glob("tir_armq-*.whl")
    return path


def _source_files() -> set[str]:
    """What the wheel must hold, as paths inside it (intrinsics/ is installed as tir_armq/intrinsics)."""
    files = {f"tir_armq/{p.relative_to(REPO / 'tir_armq')}" for p in (REPO / "tir_armq").rglob("*")
             if p.is_file() and p.suffix in (".py", ".c", ".tflite", ".json")
             and "__pycache__" not in p.parts and ".work" not in p.parts}
    files |= {f"tir_armq/intrinsics/{p.name}" for p in (REPO / "intrinsics").glob("*.py")}
    return files


def test_wheel_holds_every_module_and_the_shipped_records(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert {f"tir_armq/tuning_db/{t}/database_tuning_record.json" for t in ("aarch64", "armv7")} <= names


def test_installed_wheel_builds_from_its_shipped_records(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = (
        "from tir_armq.database import SHIPPED, SHIPPED_ROOT, build_databases\n"
        "from tir_armq.networks import network_layers\n"
        "from tir_armq.targets import AARCH64_A72\n"
        "dbs = build_databases(AARCH64_A72, [SHIPPED])\n"
        "layer = network_layers('mobilenet_v2')[1]\n"
        "spec, kernel, _ = layer.as_built()\n"
        "print(SHIPPED_ROOT)\n"
        "print(len(dbs.records(kernel.build(spec))))\n"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    res = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    root, count = res.stdout.split()
    assert Path(root) == site / "tir_armq" / "tuning_db" != SHIPPED_ROOT
    assert int(count) > 0
