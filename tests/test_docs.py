"""The README and docs stay true: every link resolves, the bridge installs on its own."""

from __future__ import annotations

import re
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_that_exists(page: Path) -> None:
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (page.parent / target).exists():
            missing.append(target)
    assert missing == [], f"{page.name} links to missing files: {missing}"


def test_a_raspberry_pi_install_of_the_bridge_alone_decodes_and_has_no_server_packages(tmp_path: Path) -> None:
    """`pip install "qsec[bridge]"` in an empty virtual environment: pyserial, paho-mqtt and click only."""
    env_dir = tmp_path / "pi"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run([py, "-m", "pip", "install", "-q", f"{ROOT}[bridge]"], capture_output=True, text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout.lower()
    names = {line.split("==")[0] for line in listed.split()}
    assert {"pyserial", "paho-mqtt", "click", "qsec"} <= names
    assert not names & {"pandas", "numpy", "duckdb", "fastapi", "pyarrow", "xarray", "influxdb-client"}, names
    from firmware_bridge.sensors import pms5003

    frame = pms5003.encode({"pm1": 4, "pm2_5": 7, "pm10": 9, "pm1_cf1": 4, "pm2_5_cf1": 7, "pm10_cf1": 9,
                            "pn0_3": 1032, "pn0_5": 301, "pn1": 52, "pn2_5": 6, "pn5": 1, "pn10": 0}).hex()
    out = subprocess.run([env_dir / "bin" / "qsec", "bridge", "decode", "--protocol", "pms5003", "--hex"],
                         input=frame + "\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"pm2_5": 7' in out.stdout
    helped = subprocess.run([env_dir / "bin" / "qsec", "bridge", "run", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "Example" in helped.stdout
