"""``/upload``, ``/download`` and ``/cancel``: shared files (#27) on the chat screen.

The command checks what it can at once (a usage, a missing or unreadable file, an id that
cannot be one) and answers in one red line; the transfer itself runs on a worker thread
(file_transfers.py) and prints its outcome when it ends: the message with the file, where a
download was saved, or why it failed (too large, over the quota, no such file...), never a
traceback. An upload goes to where the user was when typing it, even if they have moved
on since. A download never replaces a file: into a folder, a taken name gets the next
``name (1).ext`` (attachments/downloads.py); a file name given that exists is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from securechat.client.terminal.file_transfers import Transfer
from securechat.client.terminal.render import escape
from securechat.client.terminal.screen import Screen, Target
from securechat.errors import SecureChatError
from securechat.protocol.files import is_file_id

__all__ = ["FILE_HELP", "FileCommands", "split_path"]

FILE_HELP = (
    ("/upload PATH [CAPTION]", "send a file here, with an optional caption (quote a PATH with spaces)"),
    ("/download ID [PATH]", "save a shared file to your downloads folder, or a folder or new file PATH"),
    ("/cancel", "stop the uploads and downloads under way (so does Ctrl-C)"),
)  # fmt: skip


def split_path(arg: str) -> tuple[str, str]:
    """``(PATH, rest)`` of ``PATH rest``, where PATH may be quoted with ``"`` or ``'``."""
    text = arg.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end > 0:
            return text[1:end], text[end + 1 :].strip()
    path, _, rest = text.partition(" ")
    return path, rest.strip()


class FileCommands:
    """The commands of the module docstring, for :class:`Commands` to inherit."""

    t: Screen

    def cmd_upload(self, arg: str) -> None:
        raw, caption = split_path(arg)
        target = self.t.target
        if not raw:
            self.t.fail("usage: /upload PATH [CAPTION]  (quote a PATH with spaces)")
            return
        if target is None:
            self.t.fail("not sent, you are in no room: /room ROOM or /query USER first")
            return
        path = Path(raw).expanduser()
        if not path.is_file() or not os.access(path, os.R_OK):
            why = "no such file" if not path.exists() else "not a file you can read"
            self.t.fail(f"cannot upload {escape(str(path))}: {why}")
            return
        self.t.transfers.start(
            "upload", path.name, lambda t: self._upload(t, path, caption, target)
        )

    def _upload(self, transfer: Transfer, path: Path, caption: str, target: Target) -> None:
        """The worker: upload, then send the message that carries the file."""
        name = escape(path.name)
        try:
            file = self.t.client.upload(path, progress=transfer.progress)
        except SecureChatError as exc:
            if transfer.is_cancelled:  # also when a stalled network gave up meanwhile
                self.t.say(f"upload of {name} cancelled; nothing was sent")
            else:
                self.t.fail(f"not uploaded: {name}: {escape(exc.message)}")
            return
        if transfer.is_cancelled:  # cancelled as the last byte went: respect it
            self.t.say(f"upload of {name} cancelled; nothing was sent")
            return
        self.t.submit(caption, target, files=(file,))

    def cmd_download(self, arg: str) -> None:
        file_id, rest = split_path(arg)
        if not is_file_id(file_id):
            self.t.fail(
                "usage: /download ID [PATH]  (ID: the 26 letters and digits after 'id' in "
                "a [file: ...] line)"
            )
            return
        out = Path(rest.strip("'\"")).expanduser() if rest else None
        if out is not None and out.exists() and not out.is_dir():
            self.t.fail(f"{escape(str(out))} exists already: give a folder, or a new file name")
            return
        self.t.transfers.start("download", file_id, lambda t: self._download(t, file_id, out))

    def _download(self, transfer: Transfer, file_id: str, out: Path | None) -> None:
        """The worker: download, then say where the file went."""
        try:
            saved = self.t.client.download(file_id, out, progress=transfer.progress)
        except SecureChatError as exc:
            if transfer.is_cancelled:  # TransferCancelled, or a stalled network gave up
                self.t.say(f"download of {file_id} cancelled; nothing was kept")
            else:
                self.t.fail(f"not downloaded: {escape(exc.message)}")
            return
        self.t.say(f"saved {file_id} to {escape(str(saved))}")

    def interrupted(self) -> bool:
        """Ctrl-C at the prompt: cancel the transfers under way (True); with none, False
        (the screen then quits, as Ctrl-C always did)."""
        if not self.t.transfers.cancel_all():
            return False
        self.t.say("cancelling the transfers under way; Ctrl-C again quits")
        return True

    def cmd_cancel(self, _: str) -> None:
        count = self.t.transfers.cancel_all()
        if count:
            self.t.say(f"cancelling {count} transfer(s)")
        else:
            self.t.say("no upload or download under way")
