"""The layout of docs/design.md, checked: layers point one way, no import cycle, short
functions (or a written reason)."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "stvae"
LONG = 60  # lines a function may have without a reason written beside it


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports() -> dict[str, set[str]]:
    """Module -> the stvae modules it imports, at any depth of its code."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("stvae"):
                    deps.add(node.module)
                    deps |= {f"{node.module}.{a.name}" for a in node.names} & set(mods)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("stvae")}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _reaches(graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_import_cycle():
    graph = _imports()
    packages = {m for m in graph if (SRC.parent / m.replace(".", "/") / "__init__.py").exists()}
    cycles = []
    for mod in graph:
        # a package's __init__ re-exports its modules; a cycle through it alone is none
        if mod in packages:
            continue
        back = _reaches({m: d - packages for m, d in graph.items()}, mod)
        if mod in back:
            cycles.append(mod)
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_models_sit_below_data_and_the_trainer():
    graph = _imports()
    for mod in (
        "stvae.model",
        "stvae.elbo",
        "stvae.kinds",
        *(m for m in graph if m.startswith("stvae.kinds.")),
    ):
        below = _reaches(graph, mod)
        assert not {m for m in below if m.startswith("stvae.data")}, mod
        assert "stvae.train" not in below, mod


def test_evaluation_figures_and_curves_never_load_the_trainer():
    code = (
        "import sys, stvae.evaluate, stvae.figures, stvae.curve, stvae.judge; "
        "print('stvae.train' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_long_functions_say_why():
    unexplained = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                head = "\n".join(lines[node.lineno - 1 : node.body[0].lineno + 2])
                if length > LONG and "# long:" not in head:
                    unexplained.append(f"{path.relative_to(SRC)}:{node.name} ({length} lines)")
    assert not unexplained, "functions over 60 lines without a '# long:' reason: " + ", ".join(
        unexplained
    )
