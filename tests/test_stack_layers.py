"""The local stack is a ladder (issue 21): each module of python_jobs/stack imports only the rungs below it, so
following a setting from `up` never climbs back. Read from the source, so a new import that closes a circle fails."""

import ast
from pathlib import Path

import python_jobs.stack

LADDER = ["processes", "state_folder", "jars", "versitygw", "postgres", "s3_server", "metastore", "cluster", "services"]
STACK = Path(python_jobs.stack.__file__).parent


def _imports(module: str) -> set[str]:
    """The stack modules a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse((STACK / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("python_jobs.stack."):
                found.add(node.module.rsplit(".", 1)[1])
            elif node.module == "python_jobs.stack":
                found.update(alias.name for alias in node.names)
    return found


def test_every_module_of_the_stack_is_on_the_ladder():
    assert sorted(path.stem for path in STACK.glob("*.py") if path.stem != "__init__") == sorted(LADDER)


def test_each_rung_imports_only_rungs_below_it():
    upward = {module: sorted(name for name in _imports(module) if LADDER.index(name) >= LADDER.index(module))
              for module in LADDER}
    assert {module: names for module, names in upward.items() if names} == {}


def test_the_spark_session_module_does_not_reach_the_stacks_top():
    """python_jobs.spark sits between the metastore and the cluster: it may use the catalog, never start services."""
    tree = ast.parse((STACK.parent / "spark.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not modules & {"python_jobs.stack.cluster", "python_jobs.stack.services"}
