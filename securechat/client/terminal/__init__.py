"""The terminal UI: a prompt_toolkit chat screen over the :class:`~securechat.client.Client` library.

Only this package imports prompt_toolkit; the library (``securechat.client``) works
without it. ``app`` runs the screen; ``commands`` and ``team_commands`` are the slash
commands; ``screen`` is what they may touch; ``render`` turns events into styled lines;
``catchup`` and ``missed`` remember and show what was read and missed.
"""

from __future__ import annotations

from securechat.client.terminal.app import ChatTerminal

__all__ = ["ChatTerminal"]
