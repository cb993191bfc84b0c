"""The two tiers of the suite (docs/testing.md): `make test` leaves out the tests marked
``slow`` and must still reach every capability and every module; `make test-all`, which
CI runs, leaves out nothing."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SRC = ROOT / "src" / "stvae"

# What the quick tier must reach, and the quick test that reaches it.
REACHED_BY = {
    "train": "test_train.py::test_trains_on_a_file",
    "resume": "test_train.py::test_resume_continues_exactly",
    "evaluate": "test_evaluate.py::test_probe_accuracies_equal_a_direct_scikit_learn_computation",
    "figures": "test_figures.py::test_every_figure_is_written_and_not_blank",
    "curve": "test_curve.py::test_every_snapshot_is_scored_and_the_last_point_is_evaluate_of_the_final_weights",  # noqa: E501
    "reproduce": "test_reproduce.py::test_reproduce_restarts_where_it_stopped",
    "every kind": "test_kinds.py::test_every_kind_trains_a_few_steps_and_loads_as_itself",
    "a new kind": "test_kinds.py::test_a_toy_kind_registered_in_one_place_trains_evaluates_and_draws",  # noqa: E501
    "every dataset": "test_datasets.py::test_every_dataset_draws_labelled_videos_of_its_channels",
    "a new dataset": "test_datasets.py::test_a_toy_dataset_registered_in_one_place_trains_evaluates_and_draws",  # noqa: E501
    "bad input": "test_cli.py::test_bad_input_is_one_line",
    "the entry point": "test_cli.py::test_entry_point_has_no_traceback",
}

# Modules no test imports by name, and the quick test whose code path runs them.
THROUGH = {
    "stvae.data.files": "test_train.py::test_trains_on_a_file",  # a --data FILE
    "stvae.kinds.blocks": "test_kinds.py::test_every_kind_has_the_shapes_of_the_contract",
}


def _is_slow(decorator: ast.expr) -> bool:
    return ast.unparse(decorator) == "pytest.mark.slow"


def _quick_tests(path: Path) -> set[str]:
    """The test functions of a file that the quick tier runs (not marked slow, in a
    file not marked slow as a whole)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            if "slow" in ast.unparse(node.value):
                return set()
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and not any(_is_slow(d) for d in node.decorator_list)
    }


def test_the_quick_tier_reaches_every_capability():
    for what, where in REACHED_BY.items():
        file, name = where.split("::")
        assert name in _quick_tests(TESTS / file), f"{what}: {where} is not in `make test`"


def test_every_module_is_imported_by_a_file_of_quick_tests():
    modules = {
        ".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in SRC.rglob("*.py")
        if p.name != "__main__.py"
    }
    reached = set()
    for path in TESTS.glob("test_*.py"):
        if not _quick_tests(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stvae"):
                reached |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                reached |= {a.name for a in node.names}
    missing = modules - reached - set(THROUGH)
    assert not missing, f"no file of quick tests imports {sorted(missing)}"
    for module, where in THROUGH.items():  # reached only through another: by this test
        file, name = where.split("::")
        assert module in modules and name in _quick_tests(TESTS / file), module


def test_a_slow_test_is_marked_so_and_ci_runs_every_tier():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'markers = ["slow:' in text
    make = (ROOT / "Makefile").read_text()
    assert '-m "not slow"' in make.split("\ntest:")[1].split("\n\n")[0]
    assert "slow" not in make.split("\ntest-all:")[1].split("\n\n")[0]
    assert "make test-all" in (ROOT / ".ci" / "run").read_text()
    # a tier selector that matched nothing would pass vacuously: the quick tier has tests
    assert sum(len(_quick_tests(p)) for p in TESTS.glob("test_*.py")) > 100


def test_the_judges_tests_share_a_worker():
    """`make test` runs the tests on several workers; the tests that need the sprites judge
    are one group, which the Makefile's `--dist loadgroup` keeps on one worker (without it
    the group means nothing, and a worker waits for another's judge)."""
    make = (ROOT / "Makefile").read_text()
    pytest_line = make.split("\nPYTEST :=")[1].split("\n")[0]
    assert "OMP_NUM_THREADS=1" in make.split("\nPYTEST :=")[0].split("\n")[-1] + pytest_line
    assert "-n $(TEST_WORKERS)" in pytest_line and "--dist loadgroup" in pytest_line
    for target in ("test", "test-all"):
        assert "$(PYTEST)" in make.split(f"\n{target}:")[1].split("\n\n")[0]
    grouped = [p for p in TESTS.glob("test_*.py") if 'xdist_group("judge")' in p.read_text()]
    assert len(grouped) >= 4  # judge, field, sprites, reproduce
