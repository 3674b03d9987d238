"""The layers of the package, held by a test: no import goes up a layer, no import circle.

The layers are written once, in the package docstring (``llmcompare/__init__.py``), and read
from there; every ``import`` of an ``llmcompare`` module anywhere in a source file (module level,
under ``TYPE_CHECKING`` or inside a function) is checked. A function-level import that goes up a
layer is a circle in disguise, so it counts too, except the few named in ``ALLOWED`` with their
reasons.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import llmcompare

SRC = Path(llmcompare.__file__).resolve().parent


def _layers() -> dict[str, int]:
    """Top-level part of the package -> layer, read from the package docstring's list."""
    found: dict[str, int] = {"__init__": 8}  # the facade re-exports from every layer
    for line in (llmcompare.__doc__ or "").splitlines():
        match = re.match(r"(\d)\. ([\w, ]+):", line)
        if match:
            found.update(dict.fromkeys(match[2].split(", "), int(match[1])))
    return found


LAYERS = _layers()

# (importer's part, imported part): why this upward import is right.
ALLOWED: dict[tuple[str, str], str] = {
    ("record", "report"): "Comparison's facade methods (to_pandas, _repr_html_) render lazily",
    ("record", "decision"): "Comparison.break_even, a facade method, reads the record lazily",
    ("config", "comparison"): "ComparePlan.run, the typed handoff, calls compare() lazily",
    ("config", "record"): "ComparePlan.run returns compare()'s Comparison (an annotation only)",
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
        if len(parts) == 1:
            return "llmcompare"
    return ".".join(parts)


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, type-only) for every llmcompare import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_only(tree)
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        typed = id(node) in typing_only
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name, typed) for a in node.names if a.name.startswith("llmcompare")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "llmcompare":
                # `from llmcompare import x`: x is a submodule or a public name of the facade.
                found += [(node.lineno, f"llmcompare.{a.name}", typed) for a in node.names]
            elif target.startswith("llmcompare."):
                # `from llmcompare.pkg import sub`: the submodule when there is one.
                subs = [f"{target}.{a.name}" for a in node.names]
                found += [(node.lineno, t if _exists(t) else target, typed) for t in subs]
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def _edges() -> list[tuple[str, int, str, bool]]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        importer = _module_of(path)
        for line, target, typed in _imports(path):
            # A target that is no module is a public name of the facade, `llmcompare`.
            edges.append((importer, line, target if _exists(target) else "llmcompare", typed))
    return edges


def test_every_part_of_the_package_has_a_layer() -> None:
    code = {p.stem for p in SRC.glob("*.py")} | {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert code - set(LAYERS) == set()


def test_small_modules_and_few_at_the_top() -> None:
    # The folders show the layers: a flat package of many modules hides them again.
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= 20, top
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := _lines(p)) > 700}
    assert long == {}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_import_goes_up_a_layer() -> None:
    wrong = []
    for importer, line, target, _ in _edges():
        a, b = _part(importer), _part(target)
        if a == b or (a, b) in ALLOWED:
            continue
        if LAYERS[b] > LAYERS[a]:
            wrong.append(f"{importer}:{line} imports {target} (layer {LAYERS[a]} -> {LAYERS[b]})")
    assert wrong == []


def test_no_import_circle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for importer, _, target, typed in _edges():
        # An import under TYPE_CHECKING never runs: a type named both ways is not a circle.
        if typed or (_part(importer), _part(target)) in ALLOWED or importer == target:
            continue
        graph.setdefault(importer, set()).add(target)
    # Tarjan's strongly connected components: any of size > 1 is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    found = [" <-> ".join(c) for c in circles]
    assert found == [], "\n".join(found)


def test_no_test_module_imports_another() -> None:
    # What tests share lives in tests/helpers (servers, the CLI runner, record builders): a test
    # module importing another runs that module's imports and fixtures where nobody expects.
    tests = Path(__file__).resolve().parent
    modules = {p.stem for p in tests.rglob("test_*.py")}
    found = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.relative_to(tests)}: {n}" for n in names if n in modules]
    assert not found, found
