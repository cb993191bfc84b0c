"""The layout of docs/design.md, checked: layers point one way, no import cycle, short
functions (or a written reason)."""

import ast
import re
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


def test_the_cli_and_training_start_without_scikit_learn():
    """scikit-learn (with scipy and pandas) costs seconds of every process that imports it:
    only fitting a probe imports it, not ``stvae --help`` or ``stvae train --no-check``."""
    code = (
        "import sys, stvae.cli, stvae.train, stvae.evaluate, stvae.reproduce; "
        "stvae.cli.build_parser(); print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sklearn', 'scipy', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stvae_help_lists_its_commands_without_importing_torch():
    """`stvae --help` (and a mistyped command) answers in a fraction of a second: torch is
    imported only once a subcommand's flags are built, and only that subcommand's."""
    code = (
        "import sys\nfrom stvae.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, 'torch' in sys.modules, file=sys.stderr)"
    )
    for argv, answer in ((["--help"], "0 False"), (["trian"], "2 False")):
        out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
        assert out.stderr.strip().splitlines()[-1] == answer, argv
    out = subprocess.run(
        [sys.executable, "-c", code, "train", "--help"], capture_output=True, text=True
    )
    assert "--static-features" in out.stdout  # the named command's flags are all there
    assert out.stderr.strip().splitlines()[-1] == "0 True"


REASON = re.compile(r"# long:(.*)$", re.M)


def _length_problems(source: str, where: str = "") -> list[str]:
    """Functions of ``source`` over LONG lines whose signature carries no reason of five
    words or more in a ``# long:`` comment, reasons given twice (boilerplate), and
    reasons left on functions that are no longer long."""
    lines = source.splitlines()
    problems, seen = [], {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = node.end_lineno - node.lineno + 1
        end = node.lineno - 1  # the signature: to the line whose code ends with its colon
        while not lines[end].split("#")[0].rstrip().endswith(":"):
            end += 1
        head = "\n".join(lines[node.lineno - 1 : end + 1])
        reason = REASON.search(head)
        name = f"{where}{node.name} ({length} lines)"
        if reason is None:
            if length > LONG:
                problems.append(f"{name}: no '# long:' reason")
            continue
        text = reason.group(1).strip()
        if length <= LONG:
            problems.append(f"{name}: a '# long:' reason on a function that is not long")
        elif len(text.split()) < 5:
            problems.append(f"{name}: a reason of fewer than five words ({text!r})")
        elif text in seen:
            problems.append(f"{name}: the reason of {seen[text]} again")
        seen.setdefault(text, name)
    return problems


def test_long_functions_say_why():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        problems += _length_problems(path.read_text(), f"{path.relative_to(SRC)}:")
    assert not problems, "; ".join(problems)


def test_the_length_rule_wants_a_reason_and_no_stale_one():
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG))
    bare = f"def f():  # long:\n{body}\n"
    short = "def g():  # long: a reason of many words here\n    return 1\n"
    twice = "".join(
        f"def h{i}():  # long: the same reason given twice over\n{body}\n" for i in range(2)
    )
    comment_in_body = f"def k():\n    # long: a reason in the body is no reason\n{body}\n"
    assert "fewer than five words" in _length_problems(bare)[0]
    assert "not long" in _length_problems(short)[0]
    assert "again" in _length_problems(twice)[0]
    assert "no '# long:' reason" in _length_problems(comment_in_body)[0]
    ok = f"def m():  # long: one block per table, in the report's order\n{body}\n"
    assert _length_problems(ok) == []


def test_the_layout_of_docs_design_names_every_module():
    text = (SRC.parents[1] / "docs" / "design.md").read_text()
    layout = text.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"([a-z_]+\.py)", layout))
    modules = {p.name for p in SRC.rglob("*.py")} - {"__init__.py", "__main__.py"}
    assert not modules - named, f"docs/design.md's layout lacks {sorted(modules - named)}"
    assert not named - modules - {"__init__.py"}, f"it names {sorted(named - modules)}"
