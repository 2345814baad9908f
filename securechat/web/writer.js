// Writing: sending what the composer holds (a message or a slash command), retrying a
// failed send, and editing and deleting messages. Between Reader and the App (app.js).

import { parseCommand } from "./chat.js";
import { tooLongText } from "./drafts.js";
import { Reader } from "./reader.js";
import * as S from "./state.js";

export class Writer extends Reader {
  constructor() {
    super();
    this.editing = null; // { key, id } while the composer edits a message
  }

  sendComposed() {
    let body = this.composer.value;
    const conversation = this.state.conversations.get(this.state.current);
    if (!body.trim() || !conversation) return;
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

  submit(conversation, body) {
    const send = this.connection.submit(body, conversation.target());
    conversation.pending.set(send.ref, { send, status: "sending" });
    this.messages.pending(conversation, send.ref);
    this.messages.toBottom();
  }

  retry(conversation, ref) {
    const entry = this.dismiss(conversation, ref);
    if (entry) this.submit(conversation, entry.send.body);
  }

  // A failed send taken back into the composer, to be changed and sent again.
  editFailed(conversation, ref) {
    if (this.composer.value.trim() !== "" || this.editing !== null) {
      this.composer.error("Send or clear what you are typing first, then edit the failed message.");
      return;
    }
    const entry = this.dismiss(conversation, ref);
    if (!entry) return;
    this.composer.value = entry.send.body;
    this.composer.error(entry.reason ? `Not sent: ${entry.reason}` : "");
    this.composer.focus();
  }

  dismiss(conversation, ref) {
    const entry = conversation.pending.get(ref);
    conversation.pending.delete(ref);
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
    if (found === null || found.message.body === body) return; // nothing to change
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
    this.composer.startEditing(message.body);
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
