"""Every limit, timeout and default in one place.

The CLI builds these frozen objects once from its options and passes them down; no module
reads settings from globals or the environment on its own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

from securechat.directory.settings import DirectoryConfig

DEFAULT_PORT = 5050
DEFAULT_WEB_PORT = 5443
DEFAULT_DB_URL = "sqlite:///securechat.db"
DEFAULT_CERTS_DIR = Path("certs")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True, slots=True)
class HashParams:
    """argon2id cost parameters (see docs/security.md for why these values).

    The default is RFC 9106's second recommended option ("low memory"): t=3, m=64 MiB,
    p=4. ``for_tests()`` is a cheap profile so the test suite stays fast; it is never
    selectable from the command line.
    """

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4
    hash_len: int = 32
    salt_len: int = 16

    @classmethod
    def for_tests(cls) -> HashParams:
        return cls(time_cost=1, memory_cost_kib=1024, parallelism=1)


@dataclasses.dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """NIST SP 800-63B: length and guessability, no composition rules (docs/security.md).

    Guessability is zxcvbn's estimate, from its lists of common and breached passwords,
    words and names, and its patterns (repeats, sequences, keyboard rows, dates), with the
    user name and ``context_words`` counted as the first words an attacker would try.
    """

    min_length: int = 8
    max_length: int = 1024
    # zxcvbn's score, 0-4: 3 is its "safely unguessable", at least 10^8 guesses, each an
    # argon2id hash for an attacker holding the database (and throttled online).
    min_score: int = 3
    # zxcvbn's own cap: its work grows quadratically with length, and a password whose
    # first 72 characters are strong is strong.
    estimated_length: int = 72
    # The product's name; the CLI adds this machine's host name.
    context_words: tuple[str, ...] = ("securechat",)


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Login throttling (docs/security.md, "Login throttling"); times in seconds.

    An "address" is an address key (``Limits.ipv6_prefix``): an IPv4 address or an IPv6 /64.
    """

    free_failures: int = 5  # per (user, address): delays start with the 6th failure in a row
    # Per address, across the names it has never logged in as (spraying made-up names).
    free_failures_per_address: int = 20
    # Per account, counting only addresses it has never logged in from: a colleague's few
    # stray attempts, not a campaign spread over many addresses. Past it, one guess per
    # delay for the whole account (at most about 300 a day at the cap).
    free_failures_per_account: int = 10
    first_delay: float = 1.0  # then doubling with every further failure...
    max_delay: float = 300.0  # ...up to five minutes
    forget_after: float = 900.0  # a key with no failure for 15 minutes starts over
    # An account's record lasts a day, so a slow campaign stays at the cap instead of
    # starting over every 15 minutes.
    account_forget_after: float = 24 * 3600.0
    # Addresses that logged in as an account are spared its per-account delay: a desktop,
    # a laptop, a VPN and the office NAT, with room to spare. The oldest is dropped first.
    known_addresses_per_account: int = 16
    known_address_ttl: float = 30 * 24 * 3600.0  # a month after its last login: a holiday
    max_keys: int = 100_000  # bounds the table's memory (about 200 bytes a key)


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on everything an untrusted peer controls. Sizes in bytes, times in seconds."""

    max_frame: int = 65536
    max_body: int = 4000
    max_connections: int = 10000
    max_unauthenticated: int = 256
    max_unauthenticated_per_ip: int = 32  # past it, that address's longest waiting is closed
    # One "address" for every per-address count (the caps here and the login throttle): an
    # IPv4 address, or this network of an IPv6 one, as a host is usually given a whole /64.
    ipv6_prefix: int = 64
    # Logged-in sessions: a person's laptop, desktop, phone and scripts, with room to spare.
    max_sessions_per_user: int = 32
    # One address may be an office NAT, a VPN gateway or a terminal server with a whole
    # floor behind it: 256 seats 100 people with two sessions each, while one machine,
    # whatever accounts it holds, still takes at most 2.6 % of max_connections.
    max_sessions_per_address: int = 256
    handshake_timeout: float = 10.0  # from accept: a trusted proxy's header, then TLS
    # A PROXY protocol v2 header, at most (v1 has its own 107 bytes): the addresses and
    # the TLVs a proxy may add (unique id, TLS details, a cloud endpoint's id).
    max_proxy_header: int = 2048
    # An HTTP request to the web port: its head at most (request line and headers), a line
    # in it at most (the request line is answered 414 past it, a header line 431), and
    # how many headers (431 past it): the bounds websockets' own handshake parser had.
    max_http_head: int = 64 * 1024
    max_http_line: int = 8192
    max_http_headers: int = 128
    auth_timeout: float = 10.0
    idle_timeout: float = 90.0
    heartbeat: int = 30
    outbox_frames: int = 4096
    outbox_bytes: int = 8 * 1024 * 1024
    stuck_writer_timeout: float = 20.0
    rate_per_second: float = 200.0
    rate_burst: int = 400
    history_default: int = 50
    history_limit: int = 500
    sync_page: int = 1000  # messages in one sync reply, at most...
    sync_reply_bytes: int = 4 * 65536  # ...and bytes, as it is queued whole, outside the outbox
    rooms_page: int = 1000  # rooms in one rooms reply, at most, and never more than one frame
    search_default: int = 20  # matches in one search reply when the client names no limit...
    search_limit: int = 100  # ...and at most (and never more than one frame)
    # A query examines at most this many messages holding its text, readable or not (a
    # member's page is found in the first few; an outsider's text stops here: ~5 ms)...
    search_scan_limit: int = 2000
    # ...and one user (all their sessions together) runs this many a second, bursts of:
    search_rate_per_second: float = 2.0
    search_burst: int = 10
    hash_concurrency: int = 1  # argon2 checks at once; each already keeps 4 lanes busy
    token_ttl: float = 7 * 24 * 3600.0  # resume tokens: a week, then a password again
    # A send's ref names one message this long: a resend with it is acked with the first
    # copy's id, and a ref reused later is a new message. As long as token_ttl: a client
    # resends only while it can resume its session, so every resend falls within it.
    send_ref_window: float = 7 * 24 * 3600.0
    max_tokens_per_user: int = 32  # a login past this revokes the user's oldest token
    # "Stay signed in on this device" (#26, securechat/devices.py): a device unused this
    # long must sign in with its password again; its grant is traded within seconds...
    device_idle_timeout: float = 30 * 24 * 3600.0
    device_grant_ttl: float = 60.0
    max_devices_per_user: int = 32  # ...and a user's least recently used beyond this go
    account_check_interval: float = 2.0  # how soon passwd/disable/deluser end live sessions
    certificate_check_interval: float = 3600.0  # how often serve looks at its certificate's expiry
    certificate_retry_interval: float = 10.0  # after refusing new certificate files (half-copied?)
    # Presence changes are announced in batches (server/presence.py): every this often...
    presence_interval: float = 0.1
    # ...plus this much per 1,000 users online (bounding the frames a login storm costs)...
    presence_interval_per_1000: float = 0.2
    presence_interval_max: float = 0.5  # ...but never less often: a login is seen within 1 s
    commit_batch: int = 512  # sends stored by one commit, at most
    commit_queue: int = 50_000  # sends waiting for the disk; more are refused as overload...
    commit_queue_bytes: int = 32 * 1024 * 1024  # ...as are more than this in their bodies
    shutdown_grace: float = 3.0
    operation_timeout: float = 30.0  # a team operation (join, moderate, edit...) waits this long
    journal_poll_interval: float = 0.25  # how soon rows the command line wrote reach sessions
    search_index_lag: int = 20_000  # ids the search index may trail by in a burst (SQLite)...
    search_index_step: int = 64  # ...and ids indexed at once when catching up (~4 ms of CPU)
    # Several nodes on one PostgreSQL database (server/bus.py, server/nodes.py):
    bus_check_interval: float = 5.0  # the table is read this often even if no NOTIFY came
    bus_retry_interval: float = 1.0  # a lost listening connection is opened again this soon
    node_heartbeat_interval: float = 1.0  # each node writes its live users this often...
    node_ttl: float = 10.0  # ...and one silent this long is dead: its users go offline
    unread_page: int = 500  # conversations in one unread reply, at most (and one frame)
    people_page: int = 1000  # users in one people reply, at most (and one frame)
    members_page: int = 1000  # a room's members in one members reply (and one frame)
    invitations_page: int = 500  # pending invitations in one reply (and one frame)
    # @room / @here (a room's owners and moderators): one user's, over all rooms, at most
    # room_mention_burst at once, then one per room_mention_interval seconds on average.
    room_mention_interval: float = 600.0
    room_mention_burst: int = 3
    # Rooms one user holds: those they are in, plus those they were the last to leave (a
    # loop of create and leave is bounded too). Each costs their unread and rooms replies.
    max_rooms_per_user: int = 1000
    # Files (#27, docs/protocol.md "Files"): one file at most, a user's uploads over the
    # last 24 hours at most, uploads in flight per user and per node, files in one message.
    max_file_size: int = 25 * 1024 * 1024
    file_quota_per_day: int = 1024 * 1024 * 1024
    max_uploads_per_user: int = 4
    max_uploads: int = 64
    max_files_per_message: int = 10
    file_ticket_ttl: float = 60.0  # a ticket opens its one request within this
    file_unsent_ttl: float = 24 * 3600.0  # an upload no message carries is deleted after this
    # A transfer the server neither hears from nor writes to for this long is ended.
    transfer_idle_timeout: float = 60.0
    file_chunk: int = 256 * 1024  # a download is read from disk this much at a time
    # Deletions made elsewhere (another node, the command line) and uploads never sent
    # are swept this often; a deletion through this node removes its files at once.
    file_collect_interval: float = 300.0


@dataclasses.dataclass(frozen=True, slots=True)
class FilesConfig:
    """Bounds on the work shared files cause the server (securechat/attachments/)."""

    # An image with more pixels than this gets no thumbnail, checked from its header before
    # any decoding (a 48-megapixel phone photo passes). A PNG, GIF or WebP is decoded
    # whole (a JPEG at a reduced scale), one image at a time: memory grows with this
    # (docs/performance.md, "Shared files").
    thumbnail_max_pixels: int = 50_000_000
    thumbnail_size: int = 320  # a thumbnail fits in this many pixels square
    # Images waiting for the one thumbnail thread; past it a new one gets no thumbnail
    # rather than making its uploader wait.
    thumbnail_queue: int = 64


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    """What ``securechat serve`` needs to run."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    web_port: int | None = None  # HTTPS + WebSocket for browsers; None: no web port
    certs_dir: Path = DEFAULT_CERTS_DIR
    # A certificate and key from elsewhere (a company CA) instead of certs_dir's server pair.
    cert_file: Path | None = None
    key_file: Path | None = None
    db_url: str = DEFAULT_DB_URL
    limits: Limits = dataclasses.field(default_factory=Limits)
    hash_params: HashParams = dataclasses.field(default_factory=HashParams)
    throttle: ThrottlePolicy = dataclasses.field(default_factory=ThrottlePolicy)
    default_rooms: tuple[str, ...] = ("general",)
    renew_before_days: int = 30  # serve renews its own certificate (needs ca.key) this early
    listen_backlog: int = 1024
    # Proxies (HAProxy send-proxy-v2) whose PROXY header names the client: a connection
    # from these must start with one, and from any other address must not.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Directory login and sync (the configuration file's [directory]); None: local only.
    directory: DirectoryConfig | None = None
    # Where uploaded files live (#27); None: beside a SQLite database, or off (PostgreSQL).
    files_dir: Path | None = None
    files: FilesConfig = dataclasses.field(default_factory=FilesConfig)  # thumbnails' bounds
