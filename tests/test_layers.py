"""The layers of securechat point one way: read from every module's imports with ``ast``.

Every import counts, those inside functions and under ``if TYPE_CHECKING:`` too: a
type-only import still ties the layers together. The rules, each its own test:

- no import cycle among securechat's modules;
- only ``securechat/cli/`` and ``securechat/__main__.py`` import ``securechat.cli``;
- only ``securechat/store/`` imports ``sqlalchemy`` or ``alembic`` (``migrations/`` is
  outside the package);
- only ``securechat/directory/client.py`` imports ``ldap3``;
- only ``securechat/attachments/detect.py`` imports ``filetype`` and only
  ``securechat/attachments/thumbnails.py`` imports Pillow: the code that reads untrusted
  files' bytes is in two known places;
- ``securechat.protocol`` imports nothing of ours but itself and ``securechat.errors``
  (test_protocol_purity.py also keeps it free of I/O);
- the client never imports the server or the store; the server never imports the
  client or the CLI;
- only the terminal UI (``securechat.client.terminal``) imports prompt_toolkit (and the
  CLI, for the keyboard), and the client library never imports the UI.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import pytest

import securechat

PACKAGE_DIR = Path(securechat.__file__).parent

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """``securechat.server.hub`` for ``root/server/hub.py``; a package is its ``__init__``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(
    source: str, module: str, *, is_package: bool = False, ours: Collection[str] = ()
) -> set[str]:
    """Absolute names of the modules ``source`` (the text of ``module``) imports, anywhere in it.

    ``from a import b`` names ``a.b`` when that is one of ``ours`` (our modules), else ``a``.
    A package imported for a submodule is not counted: every module would otherwise
    import its package's ``__init__``, and an ``__init__`` that re-exports its modules
    would be in a cycle with each of them.
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in ours else base)
    return names - {module}


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> Graph:
    """Each module's imports: ``sources`` maps a module name to (its text, is a package)."""
    return {
        module: imported_modules(source, module, is_package=is_package, ours=sources.keys())
        for module, (source, is_package) in sources.items()
    }


def package_sources(root: Path = PACKAGE_DIR) -> dict[str, tuple[str, bool]]:
    """Every module under ``root``: its name, its text and whether it is a package."""
    return {
        module_name(path, root): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in sorted(root.rglob("*.py"))
    }


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None; only edges between keys count."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph[node]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target in graph and target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden_imports(
    graph: Graph,
    *,
    importers: Iterable[str],
    targets: Iterable[str],
    except_importers: Iterable[str] = (),
    except_targets: Iterable[str] = (),
) -> set[str]:
    """``"importer -> imported"`` for each import of ``targets`` by ``importers``, less the
    exceptions; each argument names modules or packages (a package covers its modules)."""
    importers, targets = tuple(importers), tuple(targets)
    except_importers, except_targets = tuple(except_importers), tuple(except_targets)
    return {
        f"{module} -> {name}"
        for module, names in graph.items()
        if _within(module, importers) and not _within(module, except_importers)
        for name in names
        if _within(name, targets) and not _within(name, except_targets)
    }


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(package_sources())


# --- the rules ------------------------------------------------------------------------


def test_import_graph_covers_every_module_and_its_imports(graph: Graph) -> None:
    assert len(graph) == len(list(PACKAGE_DIR.rglob("*.py")))
    assert {"securechat", "securechat.__main__", "securechat.server.runner"} <= graph.keys()
    assert "securechat.store.users" in graph["securechat.accounts"]
    assert "securechat.server.runner" in graph["securechat.cli.server"]


def test_securechat_has_no_import_cycle(graph: Graph) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_cli_and_main_import_the_cli(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat"],
            targets=["securechat.cli"],
            except_importers=["securechat.cli", "securechat.__main__"],
        )
        == set()
    )


def test_only_the_store_imports_sqlalchemy_or_alembic(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat"],
            targets=["sqlalchemy", "alembic"],
            except_importers=["securechat.store"],
        )
        == set()
    )


def test_only_the_directory_client_imports_ldap3(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat"],
            targets=["ldap3"],
            except_importers=["securechat.directory.client"],
        )
        == set()
    )


@pytest.mark.parametrize(
    ("library", "importer"),
    [("filetype", "securechat.attachments.detect"), ("PIL", "securechat.attachments.thumbnails")],
)
def test_only_one_module_reads_untrusted_files_with_each_library(
    graph: Graph, library: str, importer: str
) -> None:
    assert (
        forbidden_imports(
            graph, importers=["securechat"], targets=[library], except_importers=[importer]
        )
        == set()
    )


def test_protocol_imports_nothing_of_ours_but_itself_and_errors(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat.protocol"],
            targets=["securechat"],
            except_targets=["securechat.protocol", "securechat.errors"],
        )
        == set()
    )


def test_client_imports_neither_server_nor_store(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat.client"],
            targets=["securechat.server", "securechat.store"],
        )
        == set()
    )


def test_only_the_terminal_ui_imports_prompt_toolkit_and_the_library_not_the_ui(
    graph: Graph,
) -> None:
    library = ["securechat.client"]
    ui = ["securechat.client.terminal"]
    assert forbidden_imports(graph, importers=library, targets=ui, except_importers=ui) == set()
    assert (
        forbidden_imports(
            graph,
            importers=["securechat"],
            targets=["prompt_toolkit"],
            except_importers=[*ui, "securechat.cli.client"],
        )
        == set()
    )


def test_server_imports_neither_client_nor_cli(graph: Graph) -> None:
    assert (
        forbidden_imports(
            graph,
            importers=["securechat.server"],
            targets=["securechat.client", "securechat.cli"],
        )
        == set()
    )


# --- the helpers, on small sources ----------------------------------------------------

OURS = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os.path", {"os.path"}),
        ("import pkg.b as b", {"pkg.b"}),
        ("from pkg import b", {"pkg.b"}),
        ("from pkg import VALUE", {"pkg"}),
        ("from pkg.b import thing", {"pkg.b"}),
        ("from . import d", {"pkg.sub.d"}),
        ("from .d import thing", {"pkg.sub.d"}),
        ("from .. import a", {"pkg.a"}),
        ("from ..b import thing", {"pkg.b"}),
        ("def f():\n    from pkg import a", {"pkg.a"}),
        ("if TYPE_CHECKING:\n    from pkg.b import B", {"pkg.b"}),
        ("from sqlalchemy.orm import Session", {"sqlalchemy.orm"}),
        ("from .c import x", set()),  # itself
    ],
)
def test_imported_modules_resolves_every_kind_of_import(source: str, expected: set[str]) -> None:
    assert imported_modules(source, "pkg.sub.c", ours=OURS) == expected


def test_imported_modules_resolves_relative_imports_in_a_package() -> None:
    assert imported_modules(
        "from . import c\nfrom .. import a", "pkg.sub", is_package=True, ours=OURS
    ) == {
        "pkg.sub.c",
        "pkg.a",
    }


def test_module_name_names_modules_and_packages(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    assert module_name(root / "__init__.py", root) == "pkg"
    assert module_name(root / "sub" / "__init__.py", root) == "pkg.sub"
    assert module_name(root / "sub" / "c.py", root) == "pkg.sub.c"


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b", "c"}, "b": {"c"}, "c": {"os"}}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
        ({"a": {"x"}, "x": {"y"}, "y": {"z"}, "z": {"x"}}, ["x", "y", "z", "x"]),
    ],
)
def test_find_cycle_reports_the_cycle_it_finds(graph: Graph, cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_find_cycle_sees_a_cycle_through_a_type_checking_import() -> None:
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from pkg.b import B", False),
        "pkg.b": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A",
            False,
        ),
    }
    assert find_cycle(import_graph(sources)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_forbidden_imports_names_the_import_and_honours_the_exceptions() -> None:
    graph: Graph = {
        "app.cli": {"app.server", "sqlalchemy.orm"},
        "app.cli.main": {"app.cli"},
        "app.server": {"app.cli.options", "app.store"},
        "app.store.users": {"sqlalchemy"},
    }
    assert forbidden_imports(
        graph, importers=["app"], targets=["app.cli"], except_importers=["app.cli"]
    ) == {"app.server -> app.cli.options"}
    assert forbidden_imports(
        graph, importers=["app"], targets=["sqlalchemy"], except_importers=["app.store"]
    ) == {"app.cli -> sqlalchemy.orm"}
    assert forbidden_imports(
        graph, importers=["app.server"], targets=["app"], except_targets=["app.store"]
    ) == {"app.server -> app.cli.options"}
