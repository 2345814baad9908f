"""``securechat bench``: a load generator for sizing a securechat server.

In the parent process, ``workloads`` starts a run against a given server or a throwaway
one (``harness`` starts it as a subprocess and reads its CPU and memory from /proc); the
workloads themselves are ``chat`` (fanout-rate, fanout-max, scaling), ``connect`` and
``idle``, standing on the shared steps in ``run``. ``pool`` starts the ``worker``
processes, each multiplexing many non-blocking TLS connections, and ``commands`` holds
what the two sides pass over their pipes. ``report`` prints the progress bar, the summary
table and the JSON; ``plot`` draws the scaling chart (needs the optional ``bench`` extra).

Import from the modules themselves: this package imports none of them, so that the CLI can
name ``commands.Transport`` in ``bench --help`` without loading the bench.
"""
