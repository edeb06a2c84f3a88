"""The package's layering, checked on its source: every `samg_video` import (module top or inside a
function) goes to the same layer or one below, and the top-level parts form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "samg_video"

# Low to high: a part may import its own layer and the layers below, never one above.
LAYERS = [
    {"resources", "atomic", "yamlfile", "catalogue", "lazy"},  # package files, atomic writes, YAML, the metric
    # catalogue, modules imported on first use
    {"cards", "media", "flow", "settings", "arguments", "manifest", "modelconfig"},  # model cards, video files,
    # optical flow, a run's settings, the argument adapter, a run folder's records, a model's config read as data
    {"guidance"},                   # the tensor math
    {"metrics", "viz"},             # temporal metrics, pictures
    {"demo"},                       # the bundled model: a diffusers pipeline and its world
    {"pipelines", "prompts"},       # diffusers integration, model loading; prompt suites
    {"generate"},                   # one guided generation
    {"evaluation"},                 # the one harness: measure and score a clip
    {"sweep"},
    {"report"},
    {"cli", "__init__", "__main__"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """'samg_video.guidance.samg' -> 'guidance'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) for every samg_video module that `path` imports, anywhere in the file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == root.name]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == root.name:
                found += [(node.lineno, target)]
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names
                          if (root.parent / Path(*f"{target}.{a.name}".split("."))).with_suffix(".py").exists()
                          or (root.parent / Path(*f"{target}.{a.name}".split("."))).is_dir()]
    return found


def edges(root: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """(importing part, imported part, 'file:line') across top-level parts."""
    out = []
    for path in sorted(root.rglob("*.py")):
        src = part_of(module_name(path, root))
        for line, target in imported(path, root):
            dst = part_of(target)
            if dst != src and dst != "__init__":
                out.append((src, dst, f"{path.relative_to(root.parent)}:{line}"))
    return out


def violations(root: Path = PACKAGE) -> list[str]:
    """Upward imports and parts missing from LAYERS, one line each."""
    found = []
    for src, dst, where in edges(root):
        if src not in RANK or dst not in RANK:
            found.append(f"{where}: {src} -> {dst}: a part not placed in LAYERS")
        elif RANK[dst] > RANK[src]:
            found.append(f"{where}: {src} (layer {RANK[src]}) imports {dst} (layer {RANK[dst]}), a layer above it")
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of a directed graph (depth-first search)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def cycles(root: Path = PACKAGE) -> list[list[str]]:
    """Cycles among top-level parts."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges(root):
        graph.setdefault(src, set()).add(dst)
    return find_cycles(graph)


def test_every_part_is_placed_and_nothing_imports_upward():
    parts = {part_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert parts <= set(RANK), f"parts not in LAYERS: {sorted(parts - set(RANK))}"
    assert violations() == []


def test_no_cycles_between_parts():
    assert cycles() == []


def test_the_contract_catches_an_upward_import_and_a_cycle(tmp_path):
    """The checks fail on a package that breaks them: guidance importing metrics, and a cycle."""
    pkg = tmp_path / "samg_video"
    (pkg / "guidance").mkdir(parents=True)
    (pkg / "metrics").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "guidance" / "__init__.py").write_text("def f():\n    from ..metrics import flow\n")
    (pkg / "metrics" / "__init__.py").write_text("from ..guidance import f\n")
    (pkg / "metrics" / "flow.py").write_text("")
    assert any("guidance (layer 2) imports metrics (layer 3)" in v for v in violations(pkg))
    assert cycles(pkg) == [["guidance", "metrics", "guidance"]]


@pytest.mark.parametrize("module,banned", [("samg_video.guidance", ("cv2", "samg_video.metrics", "diffusers", "torch")),
                                           ("samg_video.demo", ("torch", "diffusers")),
                                           ("samg_video.metrics", ("diffusers", "samg_video.pipelines"))])
def test_light_imports(module, banned):
    """What importing a part loads: the guidance methods and the bundled model's world check what was
    typed (a method's parameters, a skip policy, a prompt's words) without torch, which loads on first
    use (samg_video.lazy)."""
    code = (f"import sys, {module}; bad = [m for m in {banned!r} if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"importing {module} imported {done.stdout.strip()} {done.stderr[-300:]}"


def module_cycles(package: Path) -> list[list[str]]:
    """Cycles among the modules of one subpackage (every import, lazy ones too)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        src = module_name(path)
        graph[src] = {t for _, t in imported(path) if t.rsplit(".", 1)[0] == src.rsplit(".", 1)[0] and t != src
                      and not t.endswith("__init__")}
    return find_cycles(graph)


def test_no_cycles_between_the_guidance_modules():
    """skip, spec, options, run and the methods import one way only (lazy imports counted)."""
    assert module_cycles(PACKAGE / "guidance") == []
