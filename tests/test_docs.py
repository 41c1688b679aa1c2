"""The docs lead a reader to what exists (issue 26, defect 3; issue 27): no placeholder line left where text should
be, every relative link (and its anchor) resolves, and every `encore-recs` command and flag, `make` target and
repository path they name is real. Read from the files, the Makefile and the CLI's own parser; nothing is run."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]+`")
# a line that is only an UPPER_CASE word, perhaps in brackets: `FAULT_TABLE`, `{{TODO}}`, `<SETTINGS>`
PLACEHOLDER = re.compile(r"^\s*[{<\[]*[A-Z][A-Z0-9_]{2,}[}>\]]*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
COMMAND = re.compile(r"encore-recs[ \t]+([a-z][a-z-]*)([^|#;\n]*)")
MAKE = re.compile(r"(?<![\w.-])make[ \t]+([a-z][\w-]*)")
# a path in the repository: python_jobs/{ingest,events}/x.py, tests/test_x.py, orchestration/aws/iam/*.json, ...
PATH = re.compile(r"(?<![\w/.<>-])((?:python_jobs|orchestration|tests|benchmarks|macros|seeds|expectations)"
                  r"/(?:[\w.*-]|/|\{[\w,]+\})*)")


def _markdown_files() -> list[Path]:
    """Every Markdown file of the checkout, committed or not (what git does not ignore)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def _split(text: str) -> tuple[list[tuple[int, str]], list[str]]:
    """(lines outside code fences with their numbers, code): fenced blocks' lines and inline code spans are code."""
    prose, code, fenced = [], [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code += [span.strip("`") for span in INLINE_CODE.findall(line)]
            prose.append((number, line))
    return prose, code


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, links reduced to their text, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for _, line in _split(path.read_text())[0]:
        if line.startswith("#"):
            slug = _slug(line.lstrip("#"))
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def _placeholders(text: str) -> list[str]:
    return [f"line {n}: {line.strip()}" for n, line in _split(text)[0] if PLACEHOLDER.match(line)]


def _broken_links(path: Path) -> list[str]:
    broken = []
    for number, line in _split(path.read_text())[0]:
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{path.name}:{number}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{path.name}:{number}: {target} (no such heading)")
    return broken


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """A parser's option strings, with those of its own subcommands (`keys create --scope`)."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            found.update(o for sub in action.choices.values() for o in _options(sub))
    return found


def _subcommands() -> dict[str, set[str]]:
    """Each subcommand of the CLI with its option strings, from the parser `encore-recs` itself builds."""
    from python_jobs.cli import build_parser

    parser = build_parser()
    choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {name: _options(sub) for name, sub in choices.items()}


def _make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([^\s:#=][^:#=]*):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def _named_paths(text: str) -> set[str]:
    """The repository paths a text names, braces expanded (python_jobs/{runs,ingest}/ names both)."""
    found = set()
    for raw in PATH.findall(text):
        paths = [raw.rstrip(".,")]
        while any("{" in p for p in paths):
            p = next(p for p in paths if "{" in p)
            head, rest = p.split("{", 1)
            options, tail = rest.split("}", 1)
            paths = [q for q in paths if q != p] + [head + option + tail for option in options.split(",")]
        found.update(paths)
    return found


def _exists(path: str) -> bool:
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_a_placeholder_line_is_found():
    text = "# Faults\n\nThe table:\n\nFAULT_TABLE\n\n```\nNOT_A_PLACEHOLDER\n```\nENCORE_TOP_N is ten.\n"
    assert _placeholders(text) == ["line 5: FAULT_TABLE"]


def test_no_markdown_file_holds_a_placeholder_line():
    found = {str(p.relative_to(ROOT)): _placeholders(p.read_text()) for p in _markdown_files()}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_every_relative_link_and_anchor_resolves():
    assert [b for path in DOCS for b in _broken_links(path)] == []


def test_every_encore_recs_command_and_flag_named_exists():
    commands, unknown = _subcommands(), []
    for path in DOCS:
        for snippet in _split(path.read_text())[1]:
            for name, rest in COMMAND.findall(snippet):
                if name not in commands:
                    unknown.append(f"{path.name}: encore-recs {name}")
                    continue
                flags = re.findall(r"(?<![\w-])--[a-z][\w-]*", rest.split(" -- ")[0])
                unknown += [f"{path.name}: encore-recs {name} {f}" for f in flags if f not in commands[name]]
    assert unknown == []


def test_every_make_target_named_exists():
    targets = _make_targets()
    named = {(path.name, t) for path in DOCS for snippet in _split(path.read_text())[1] for t in MAKE.findall(snippet)}
    assert sorted(f"{name}: make {t}" for name, t in named if t not in targets) == []


def test_every_repository_path_named_exists():
    missing = {(path.name, p) for path in DOCS for p in _named_paths(path.read_text()) if not _exists(p)}
    assert sorted(missing) == []


def test_every_setting_the_code_reads_is_listed_in_operations():
    """Each ENCORE_* name the Python code or dbt's profiles.yml names is in the settings of docs/operations.md."""
    import ast

    named = {node.value for folder in ("python_jobs", "orchestration") for source in (ROOT / folder).rglob("*.py")
             for node in ast.walk(ast.parse(source.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and re.fullmatch(r"ENCORE_[A-Z0-9_]+", node.value)}
    named |= set(re.findall(r"env_var\('(ENCORE_[A-Z0-9_]+)'", (ROOT / "profiles.yml").read_text()))
    listed = set(re.findall(r"ENCORE_[A-Z0-9_]+", (ROOT / "docs" / "operations.md").read_text()))
    assert sorted(named - listed) == []
