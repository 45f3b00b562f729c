"""pyproject.toml: every shipped asset goes into the wheel, every entry point exists.
(``pip install .`` then ``fgg-generate`` from another directory was run by hand; see README.)"""

import fnmatch
import importlib
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_tracked_asset_is_package_data():
    listed = subprocess.run(["git", "ls-files", "assets"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [Path(f) for f in listed.stdout.split()]
    if not files:  # not a git checkout (an sdist): nothing to compare against
        return
    data = CONFIG["tool"]["setuptools"]["package-data"]
    packages = set(CONFIG["tool"]["setuptools"]["packages"])
    for file in files:
        package = ".".join(file.parent.parts)
        assert package in packages, f"{file}: its folder {package} is not a package in pyproject.toml"
        assert any(fnmatch.fnmatch(file.name, pattern) for pattern in data.get(package, [])), (
            f"{file} is not matched by [tool.setuptools.package-data] {package}"
        )


def test_entry_points_and_pins():
    for name, target in CONFIG["project"]["scripts"].items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    pins = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    assert pins == set(CONFIG["project"]["dependencies"])  # the Space and pip install get the same versions
