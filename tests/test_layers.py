"""python_jobs is a ladder of packages, one per part of the pipeline (issue 27), and the local stack a ladder of
modules (issue 21): each rung imports only the rungs below it, so following a call never climbs back and the tree
shows the pipeline's shape. Read from the source, so a new import that points up fails here."""

import ast
import sys
from pathlib import Path

import python_jobs

ROOT = Path(python_jobs.__file__).parent

# bottom to top; a top-level module is a rung of its own, a package is one rung for all its modules
LADDER = ["errors", "db_secret", "config", "infra", "stack", "runs", "ingest", "events", "models", "publish",
          "quality", "serving", "history", "jobs", "evaluate_cli", "cli", "stage_job"]
# inside the stack, module by module
STACK_LADDER = ["processes", "state_folder", "jars", "versitygw", "postgres", "s3_server", "metastore", "metastore_locks", "spark",
                "thrift_auth", "cluster", "services"]


def _rung(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imported(path: Path) -> set[str]:
    """The python_jobs modules and packages a file imports, at the top or inside a function, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("python_jobs"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("python_jobs"))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p != ROOT / "__init__.py")


def test_every_module_is_on_the_ladder():
    assert sorted({_rung(p) for p in _modules()} - set(LADDER)) == []


def test_at_most_eight_modules_stay_at_the_top():
    assert len([p for p in ROOT.glob("*.py") if p.name != "__init__.py"]) <= 8


def test_each_rung_imports_only_itself_and_rungs_below_it():
    upward = {}
    for path in _modules():
        rung = _rung(path)
        for name in _imported(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in LADDER and LADDER.index(parts[1]) > LADDER.index(rung):
                upward.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    assert upward == {}


def test_each_rung_of_the_stack_imports_only_rungs_below_it():
    stack = ROOT / "stack"
    assert sorted(p.stem for p in stack.glob("*.py") if p.stem != "__init__") == sorted(STACK_LADDER)
    upward = {}
    for module in STACK_LADDER:
        names = {n.split(".")[2] for n in _imported(stack / f"{module}.py")
                 if n.startswith("python_jobs.stack.") and n.split(".")[2] in STACK_LADDER}
        above = sorted(n for n in names if STACK_LADDER.index(n) >= STACK_LADDER.index(module))
        if above:
            upward[module] = above
    assert upward == {}


def test_no_package_shadows_a_standard_module():
    """spark-submit runs python_jobs/stage_job.py as a script, which puts python_jobs/ first on sys.path: a
    package there named like a standard module (platform, io, ...) would replace it for every library."""
    names = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert sorted(names & set(sys.stdlib_module_names)) == []
