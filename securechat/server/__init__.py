"""The chat server. Here, once: which threads it runs, what each owns, which lock guards what.

``runner.build_server`` builds the object graph (the composition root); ``ChatServer``
(server.py) starts and stops it, and ``ChatServer.shutdown`` joins every thread (the
connections' threads are daemons only for the cost of starting one: connection.py).

Threads, and what each one alone touches:

- **main** (runner.py): signals; asks the renewal thread to reload on SIGHUP.
- **acceptor** (an :class:`~securechat.server.listener.Acceptor` started by server.py): the
  chat port's listening socket; admits each accepted socket through
  :class:`~securechat.server.admission.Admission` and starts its thread.
- **conn <peer>**, one per chat-port connection (connection.py): its TLS stream, its
  :class:`ServerSession` and its request handler; it is the only reader of the socket.
  It writes while holding the connection's ``Turn`` (transport.py), which the delivery
  thread may take when free to write a fan-out frame directly; otherwise frames wait in
  the connection's outbox (outbox.py) and its waker.
- **committer** (committer.py): the database's writes, in batches (group commit), and
  right after each COMMIT the hub's change (effects.py); **delivery** (delivery.py):
  acks and fan-out, in commit order, written to the sessions.
- **journal-tail** (SQLite, a :class:`Periodic`) or **journal-listener** (PostgreSQL,
  LISTEN/NOTIFY) (bus.py): rows and news other writers committed, applied by
  external.py and handed to the delivery thread. **node-heartbeat** (PostgreSQL,
  nodes.py): shares who is online with the other nodes.
- **account-watcher** (account_watch.py), **cert-renewal** (renewal.py) and **presence**
  (presence.py: the hub's presence flush, paced by the number online): :class:`Periodic`
  threads (periodic.py).
- argon2 runs outside the process, in the hashing pool's worker process (hashpool.py);
  the calling connection thread waits for its result.
- **web-acceptor** (the same ``Acceptor``, started by web.py): the web port's listening
  socket, admitted through the same :class:`Admission`; each browser then gets one
  **conn <peer>** thread like a terminal's
  (connection.py), driving h11 and then websockets' sans-I/O protocol (webframing.py)
  over its TLS stream, under the same ``Turn`` and outbox rules.
- **directory-sync** (a :class:`Periodic` running directory/sync.py's ``ServerSync``, with
  a ``[directory]`` and a ``sync_interval``): the directory's users and groups, written
  through the committer.

Locks, each guarding only what is named (none is held while doing I/O or an argon2 check,
except a ``Turn``, which exists to own a socket's writes):

- ``Admission._lock``: the live connections and every cap's counts (admission.py).
- ``Hub._lock``: rooms, members, roles, who is online, presence batches (hub.py); sends
  are made from a snapshot, outside it.
- ``CurrentCredentials._lock``: the TLS context and CA new connections get (renewal.py).
- ``Outbox._lock``: one connection's queued frames and its waker (outbox.py).
- ``Turn``: one socket's writes (transport.py); ``Committer._queued_lock``: the bounds of
  the sends waiting to be stored; ``LoginThrottle._lock``, ``SharedBuckets._lock``,
  ``HashPool._lock``: their own tables only.
- ``WebServer._lock``: the browsers admitted and not yet ended (web.py).

A database session never crosses a thread: each store call opens its own.
"""
