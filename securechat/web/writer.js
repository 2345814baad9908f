// Writing: sending what the composer holds (a message, with the files uploaded for it, or
// a slash command), retrying a failed send, and editing and deleting messages. Between
// Reader and the App (app.js).

import { Attachments } from "./attachments.js";
import { parseCommand } from "./chat.js";
import { $ } from "./dom.js";
import { tooLongText } from "./drafts.js";
import { captionOf } from "./files.js";
import { Reader } from "./reader.js";
import * as S from "./state.js";
import { Uploads } from "./uploads.js";

export class Writer extends Reader {
  constructor() {
    super();
    this.editing = null; // { key, id } while the composer edits a message
    this.tickets = new Map(); // ref of a file_ticket asked -> its promise's resolve
    const askTicket = (request) => this.askTicket(request);
    const hello = () => (this.connection === null ? null : this.connection.session.hello);
    this.uploads = new Uploads({ tray: $("upload-tray"), askTicket, hello, onError: (text) => this.composer.error(text) });
    this.attachments = new Attachments(askTicket); // .sending: the files of each send by ref
    this.attachments.watch($("messages"));
  }

  // A file_ticket's answer, as a promise of the reply event (a ticket, or an error).
  askTicket(request) {
    if (this.connection === null || !this.connection.isReady) {
      return Promise.resolve({ type: "error", code: "network", message: "not connected; try again in a moment" });
    }
    return new Promise((resolve) => this.tickets.set(this.connection.request(request), resolve));
  }

  ticketReply(ref, event) {
    const resolve = this.tickets.get(ref);
    this.tickets.delete(ref);
    if (resolve !== undefined) resolve(event);
  }

  // Logged out: the uploads stop, tickets still asked are answered.
  dropTransfers() {
    this.uploads.clear();
    for (const ref of [...this.tickets.keys()]) this.ticketReply(ref, { type: "error", code: "network", message: "logged out" });
    this.attachments.sending.clear();
  }

  // Our send acknowledged: its message carries the files it was sent with.
  sentWithFiles(ref, message) {
    const files = this.attachments.sending.get(ref);
    this.attachments.sending.delete(ref);
    if (files !== undefined) message.files = files;
  }

  sendComposed() {
    let body = this.composer.value;
    const conversation = this.state.conversations.get(this.state.current);
    const { busy, files } = this.editing === null ? this.uploads.ready() : { busy: false, files: [] };
    if (busy) {
      this.composer.error("Wait for the upload to finish (or cancel it), then send.");
      return;
    }
    if ((!body.trim() && files.length === 0) || !conversation) return;
    this.composer.error("");
    const check = this.composer.check(body);
    if (check.over) {
      this.composer.error(tooLongText(check)); // the text stays, to be shortened
      return;
    }
    if (this.editing !== null) {
      this.sendEdit(body);
      return;
    }
    if (files.length > 0) {
      this.composer.value = ""; // with files, the text is their caption, never a command
      this.uploads.sent();
      this.submit(conversation, body, files);
      return;
    }
    const command = parseCommand(body, conversation.kind === "room" ? conversation.name : null);
    if (command !== null && command.error !== undefined) {
      this.composer.error(command.error); // the text stays, to be corrected
      return;
    }
    if (command !== null && command.action !== undefined) {
      this.composer.value = "";
      this.commandAction(command.action);
      return;
    }
    if (command !== null && command.request !== undefined) {
      if (!this.connection.isReady) {
        this.composer.error("Not connected; try again in a moment.");
        return;
      }
      this.composer.value = "";
      const seen = this.connection.session.lastId;
      this.commandRefs.set(this.connection.request(command.request), seen);
      return;
    }
    if (command !== null) body = command.send;
    this.composer.value = "";
    this.submit(conversation, body);
  }

  submit(conversation, body, files = []) {
    const send = this.connection.submit(body, conversation.target(), files.map((file) => file.id));
    if (files.length > 0) this.attachments.sending.set(send.ref, files);
    conversation.pending.set(send.ref, { send, status: "sending" });
    this.messages.pending(conversation, send.ref);
    this.messages.toBottom();
  }

  retry(conversation, ref) {
    const files = this.attachments.sending.get(ref) || [];
    const entry = this.dismiss(conversation, ref);
    if (entry) this.submit(conversation, entry.send.body, files);
  }

  // A failed send taken back into the composer, to be changed and sent again.
  editFailed(conversation, ref) {
    if (this.composer.value.trim() !== "" || this.editing !== null) {
      this.composer.error("Send or clear what you are typing first, then edit the failed message.");
      return;
    }
    const files = this.attachments.sending.get(ref) || [];
    const entry = this.dismiss(conversation, ref);
    if (!entry) return;
    this.uploads.restore(files); // they go with the edited text
    this.composer.value = entry.send.body;
    this.composer.error(entry.reason ? `Not sent: ${entry.reason}` : "");
    this.composer.focus();
  }

  dismiss(conversation, ref) {
    const entry = conversation.pending.get(ref);
    conversation.pending.delete(ref);
    this.attachments.sending.delete(ref);
    this.messages.pending(conversation, ref);
    return entry;
  }

  // A send the server refused: too long, and nothing typed since, it goes back into the
  // composer; else it stays in the timeline as failed, to be retried, edited or dismissed.
  sendFailed(conversation, ref) {
    const entry = conversation.pending.get(ref);
    const current = conversation.key === this.state.current;
    if (current && entry.code === "too_large" && this.composer.value === "" && this.editing === null) {
      this.dismiss(conversation, ref);
      this.composer.value = entry.send.body;
      this.composer.error(`Not sent: ${entry.reason}. Shorten it or split it into several messages.`);
      return;
    }
    this.messages.pending(conversation, ref);
    if (current) this.composer.error(`Not sent: ${entry.reason}`); // "you are muted in #ops (muted)"
    else this.composer.error(`Not sent to ${conversation.label}: ${entry.reason}`); // a /msg from elsewhere
  }

  sendEdit(body) {
    const { id } = this.editing;
    const found = S.findMessage(this.state, id);
    this.stopEditing(true);
    if (found === null || captionOf(found.message) === body) return; // nothing to change
    if (!this.connection.isReady) {
      this.composer.error("Not connected: the message was not edited.");
      return;
    }
    this.connection.request({ type: "edit", id, body });
  }

  editLast() {
    const conversation = this.state.conversations.get(this.state.current);
    const last = conversation ? conversation.lastOwn(this.state.me) : null;
    if (last === null) return false;
    this.startEditing(conversation, last);
    return true;
  }

  startEditing(conversation, message) {
    this.editing = { key: conversation.key, id: message.id };
    this.composer.startEditing(captionOf(message)); // the server keeps the file lines
  }

  stopEditing(clear) {
    if (this.editing === null) return;
    this.editing = null;
    this.composer.stopEditing(clear);
  }

  // An edit or deletion (ours acknowledged, or pushed) of a message that may be loaded.
  messageChanged(id, change) {
    const conversation = S.changeMessage(this.state, id, change);
    if (conversation === null) return;
    if (change.deleted && this.editing !== null && this.editing.id === id) this.stopEditing(true);
    this.sidebarUpdate(conversation.key);
    this.messages.upsert(conversation, id);
  }

  askDelete(conversation, id) {
    const before = conversation.confirmDelete;
    conversation.confirmDelete = id;
    if (before !== null) this.messages.upsert(conversation, before);
    this.messages.upsert(conversation, id);
    const item = this.messages.item(id); // in the window: its button was just clicked
    const yes = item === null ? null : item.querySelector("[data-confirm='yes']");
    if (yes) yes.focus();
  }

  confirmDelete(conversation, id, yes) {
    conversation.confirmDelete = null;
    if (yes) this.connection.request({ type: "delete", id });
    this.messages.upsert(conversation, id);
    this.composer.focus();
  }
}
