"""The package's layout: folders that tell the pipeline, imports that point one way, small modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mmmgen"
# lower layers never import higher ones; packages on one layer do not import each other
# (the app builds its page over app_session; cli starts the app, so it sits above it)
LAYERS = {"config": 0, "errors": 0, "text": 1, "data": 2, "render": 2, "generate": 3, "model": 4, "app_session": 5, "app": 6, "cli": 7,
          "__init__": 8, "__main__": 8}
HEAVY = ("torch", "transformers", "datasets", "symusic", "gradio", "numpy", "matplotlib", "tokenizers")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every mmmgen module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mmmgen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmmgen") and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known and m != module_name(path)}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) for m, p in mods.items()}


def layer(module: str) -> tuple[int, str]:
    top = module.split(".")[1] if "." in module else "__init__"
    return LAYERS[top], top


def test_every_module_belongs_to_a_layer():
    for m in modules():
        assert layer(m)[1] in LAYERS, f"{m}: not in a known folder"


def test_imports_point_one_way():
    wrong = []
    for m, deps in graph().items():
        (rank, top) = layer(m)
        for d in deps:
            (d_rank, d_top) = layer(d)
            if d_top == "__init__" and d == "mmmgen":
                continue  # the package docstring module; nothing imports it for code
            if d_rank > rank or (d_rank == rank and d_top != top):
                wrong.append(f"{m} -> {d}")
    assert not wrong, "imports against the layer order: " + ", ".join(sorted(wrong))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(edges.get(n, ())):
            if state.get(d) == 1:
                return [*stack[stack.index(d):], d]
            if d not in state and (cycle := visit(d)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle():
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_are_small_and_say_what_they_hold(name):
    path = modules()[name]
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 520, f"{name}: {lines} lines; split it"
    assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{name}: no module docstring"


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_mmmgen_and_help_stay_light():
    assert not loaded_after("import mmmgen") & set(HEAVY)
    out = subprocess.run([sys.executable, "-c", "import sys; from mmmgen.cli import main\n"
                          "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert "prepare" in out.stdout and "generate" in out.stdout
    assert not set(out.stdout.split()) & set(HEAVY)


def test_public_api_is_importable_from_the_package():
    import mmmgen

    for name in mmmgen.__all__:
        assert getattr(mmmgen, name) is not None
    from mmmgen import (
        Generator,
        Sampling,
        Song,
        generate_song,
        load_run,
        score_to_texts,
        text_to_score,
    )

    assert Generator.__module__ == "mmmgen.generate.song" and Sampling().temperature > 0
    assert callable(generate_song) and callable(load_run) and callable(score_to_texts) and callable(text_to_score)
    assert Song().n_bars == 8
    with pytest.raises(AttributeError):
        mmmgen.no_such_name  # noqa: B018
