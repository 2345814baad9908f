"""The terminal client runs on Windows and macOS: no POSIX-only call on its path.

No Windows machine is at hand, so this is the next best thing: the client runs in a
subprocess whose Python has no ``select.poll``/``epoll``, no ``os.eventfd`` and no
POSIX-only modules (tests/nonposix/sitecustomize.py makes it so), against a real server;
and a static check fails if any module the ``securechat`` command loads imports a
POSIX-only module at import time.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import securechat
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory

NONPOSIX = Path(__file__).parent / "nonposix"
PACKAGE = Path(securechat.__file__).parent
POSIX_ONLY = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "crypt"}
#: What the `securechat` command imports to run `connect` or `send`: the CLI registers
#: every command, so every module it loads must load on Windows.
ENTRY_POINTS = ("securechat.cli", "securechat.client", "securechat.client.terminal")


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` with the Windows-like interpreter, from this checkout."""
    root = PACKAGE.parent
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env, "PYTHONPATH": f"{NONPOSIX}{os.pathsep}{root}"},
    )


# --- at run time, without poll, eventfd and the POSIX-only modules ----------------------


def test_the_windows_like_interpreter_really_lacks_the_posix_parts() -> None:
    result = _run(
        "import os, select, selectors\n"
        "assert os.environ['SECURECHAT_NONPOSIX'] == '1'\n"
        "assert not hasattr(select, 'poll') and not hasattr(select, 'epoll')\n"
        "assert not hasattr(os, 'eventfd')\n"
        "assert selectors.DefaultSelector is selectors.SelectSelector\n"
        "try:\n    import fcntl\nexcept ImportError:\n    print('refused')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused"


def test_every_command_loads_and_explains_itself_without_posix() -> None:
    result = _run(
        "import sys\nfrom securechat.cli import main\n"
        "for args in (['--help'], ['connect', '--help'], ['send', '--help']):\n"
        "    sys.argv = ['securechat', *args]\n"
        "    try:\n        main()\n    except SystemExit as end:\n"
        "        assert end.code in (0, None), (args, end.code)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "connect" in result.stdout
    assert "--password-stdin" in result.stdout


def test_the_client_chats_and_reconnects_without_posix(
    server_factory: ServerFactory,
) -> None:
    running = server_factory()
    port = running.address[1]
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from securechat.client import Backoff, Client, Reconnected
        from securechat.protocol.messages import Message
        from securechat.transport import Waker

        assert Waker()._pair is not None, "not the socket-pair waker"
        client = Client("localhost", {port}, ca_file=Path({str(running.ca_file)!r}),
                        user="alice", password={PASSWORD!r}, reconnect=True,
                        backoff=Backoff(initial=0.05, cap=0.2))
        with client:
            print("sent", client.send("from a windows-like python", room="general"), flush=True)
            for event in client.events(timeout={TIMEOUT}):
                if isinstance(event, Message) and event.body == "over to you":
                    print("received", flush=True)
                elif isinstance(event, Reconnected):
                    print("reconnected", flush=True)
                    print("sent again", client.send("after the restart", room="general"))
                    break
    """)
    bob = running.login("bob")
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{NONPOSIX}{os.pathsep}{PACKAGE.parent}"},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("sent "), child.stderr
        bob.expect("message", body="from a windows-like python")
        bob.send(type="send", room="general", body="over to you", ref="b1")
        assert child.stdout.readline().strip() == "received"
        running.server.shutdown()  # the client must notice and log in again
        again = server_factory(port=port)
        assert child.stdout.readline().strip() == "reconnected"
        assert child.stdout.readline().startswith("sent again ")
        assert child.wait(TIMEOUT) == 0
        carol = again.login("carol")
        carol.send(type="history", room="general", ref="h")
        bodies = [m["body"] for m in carol.expect("history")["messages"]]
        assert bodies[-1] == "after the restart"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(TIMEOUT)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_send_delivers_one_message_without_posix(running_server: RunningServer) -> None:
    port = str(running_server.address[1])
    result = _run(
        "import sys\nfrom securechat.cli import main\n"
        f"sys.argv = ['securechat', 'send', 'localhost', '--port', {port!r}, '--user', 'alice', "
        f"'--ca', {str(running_server.ca_file)!r}, '--room', 'general', 'sent by send']\nmain()\n",
        SECURECHAT_PASSWORD=PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    bob = running_server.login("bob")
    bob.send(type="history", room="general", ref="h")
    assert [m["body"] for m in bob.expect("history")["messages"]] == ["sent by send"]


# --- statically: no POSIX-only import on the command's path ------------------------------


def top_level_imports(source: str) -> set[str]:
    """Modules imported when ``source`` runs: at module level, not inside a function."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found.add(node.module or "")
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                continue  # never runs
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, block, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(ast.parse(source).body)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(test)


def loaded_by(entry_points: tuple[str, ...]) -> dict[str, set[str]]:
    """Every securechat module loaded (transitively) by importing ``entry_points``, with
    the modules each imports at load time."""
    graph: dict[str, set[str]] = {}
    todo = list(entry_points)
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        path = _source(name)
        if path is None:
            continue
        imports = top_level_imports(path.read_text(encoding="utf-8"))
        if path.name == "__init__.py" and name == "securechat.cli":
            imports |= {f"securechat.cli.{m}" for m in _registered_commands()}
        graph[name] = imports
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo.extend(m for m in (*imports, *parents) if m.startswith("securechat"))
    return graph


def _source(name: str) -> Path | None:
    relative = Path(*name.split(".")[1:])
    for path in (PACKAGE / relative / "__init__.py", (PACKAGE / relative).with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _registered_commands() -> list[str]:
    from securechat.cli import COMMAND_MODULES

    return list(COMMAND_MODULES)


def test_no_module_the_command_loads_imports_a_posix_only_module() -> None:
    offenders = {
        module: sorted(i for i in imports if i.split(".")[0] in POSIX_ONLY)
        for module, imports in loaded_by(ENTRY_POINTS).items()
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_the_static_check_sees_through_conditionals_but_not_into_functions() -> None:
    source = (
        "import os\nif os.name == 'posix':\n    import fcntl\n"
        "try:\n    import termios\nexcept ImportError:\n    pass\n"
        "def later():\n    import resource\n"
        "if TYPE_CHECKING:\n    import pwd\n"
    )
    assert top_level_imports(source) == {"os", "fcntl", "termios"}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_the_command_path_covers_the_client_modules(entry: str) -> None:
    loaded = loaded_by(ENTRY_POINTS)
    assert entry in loaded
    assert {"securechat.client.connection", "securechat.transport", "securechat.cli.client"} <= set(
        loaded
    )
