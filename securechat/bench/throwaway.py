"""``securechat serve`` for the bench's own throwaway server, with cheap argon2 logins.

Run as ``python -m securechat.bench.throwaway CONFIG.json`` by :mod:`securechat.bench.harness`.
The cheap profile is never selectable from the command line because a real server that
used it would downgrade every password hash it re-hashes; so this module refuses to run
unless the database sits in a directory that the bench created (it holds the marker file),
or is a PostgreSQL database on 127.0.0.1 that the bench made beside such a directory
(``bench nodes``: its own throwaway cluster).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from securechat.bench.harness import MARKER
from securechat.config import HashParams, Limits, ServerConfig, ThrottlePolicy
from securechat.errors import ConfigError, SecureChatError
from securechat.server.runner import configure_logging, run_server


def load_config(path: Path) -> ServerConfig:
    """The throwaway server's config.

    Raises:
        ConfigError: the database is not in a directory made by the bench.
    """
    raw = json.loads(path.read_text())
    db_url: str = raw["db"]
    if db_url.startswith("postgresql+psycopg://"):
        is_bench = "@127.0.0.1:" in db_url and (Path(raw["certs"]).parent / MARKER).is_file()
    else:
        db_file = Path(db_url.removeprefix("sqlite:///"))
        is_bench = db_url.startswith("sqlite:///") and (db_file.parent / MARKER).is_file()
    if not is_bench:
        raise ConfigError(f"{db_url} is not a bench database; use `securechat serve`")
    limits = dataclasses.replace(Limits(), **raw["limits"])
    if "rate_per_second" in raw["limits"]:
        limits = dataclasses.replace(limits, rate_burst=max(int(limits.rate_per_second * 2), 1))
    return ServerConfig(
        host="127.0.0.1",
        port=0,
        web_port=0,  # for --transport ws; the bench reads both ports from the log
        certs_dir=Path(raw["certs"]),
        db_url=db_url,
        limits=limits,
        hash_params=HashParams.for_tests(),
        # The generator logs in up to 64 users at once from one address; the login
        # throttle admits only as many logins in flight per address as it has failures left.
        throttle=ThrottlePolicy(free_failures_per_address=100_000),
    )


def main() -> None:
    configure_logging("info")
    try:
        run_server(load_config(Path(sys.argv[1])))
    except SecureChatError as exc:
        print(f"securechat: error: {exc.message}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
