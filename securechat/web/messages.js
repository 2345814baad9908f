// The open conversation's timeline: one <li> per message, keyed by id (pending sends by ref).
//
// Opening a conversation builds the list once; after that each change touches its own item:
// a new message is one insertion (at the end, or where its id falls for older pages), an
// edit one replacement. Around the items sit three nodes kept for the view's life: the top
// marker (start of the conversation / loading), the "newer messages below" marker after the
// last item, and the "New messages" divider, moved before the first unread message.

import { el } from "./dom.js";
import { insertionIndex } from "./state.js";
import { messageItem, pendingItem, systemItem } from "./messageitem.js";

const BOTTOM_SLACK_PX = 40; // this close to the bottom counts as at the bottom

export class MessagesView {
  // context: { me(), canDeleteOthers(conversation), actions } (see messageitem.js)
  constructor(list, context) {
    this.list = list;
    this.context = context;
    this.conversation = null;
    this.items = new Map(); // id -> <li>
    this.pendingItems = new Map(); // ref -> <li>
    this.top = el("li", { className: "older" });
    this.newer = el("li", { className: "newer" }, "Scroll down for newer messages…");
    this.divider = el("li", { className: "divider", attrs: { role: "separator" } }, "New messages");
    this.stuck = true; // the view follows new messages (it was at the bottom)
    this.stickQueued = false;
    list.addEventListener("scroll", () => {
      this.stuck = this.atBottom();
    });
  }

  // Builds the whole list for `conversation` (null: none open).
  show(conversation) {
    this.conversation = conversation;
    this.items.clear();
    this.pendingItems.clear();
    if (conversation === null) {
      this.list.replaceChildren();
      return;
    }
    const nodes = [this.top];
    for (const id of conversation.ids) {
      const node = this.build(id);
      this.items.set(id, node);
      nodes.push(node);
    }
    nodes.push(this.newer);
    for (const ref of conversation.pending.keys()) {
      const node = this.buildPending(ref);
      this.pendingItems.set(ref, node);
      nodes.push(node);
    }
    this.list.replaceChildren(...nodes);
    this.markers(conversation);
    this.placeDivider(conversation);
  }

  // The same conversation again, where the reader was (buttons depend on the room role).
  rebuild() {
    const fromBottom = this.list.scrollHeight - this.list.scrollTop;
    this.show(this.conversation);
    this.list.scrollTop = this.list.scrollHeight - fromBottom;
  }

  // One item added or changed: O(1) DOM work (plus a lookup for an out-of-order id).
  upsert(conversation, id) {
    if (conversation !== this.conversation) return;
    const node = this.build(id);
    const old = this.items.get(id);
    this.items.set(id, node);
    if (old !== undefined) {
      old.replaceWith(node);
      return;
    }
    let next = conversation.after(id);
    while (next !== null && !this.items.has(next.id)) next = conversation.after(next.id); // a page's other items
    this.list.insertBefore(node, next === null ? this.newer : this.items.get(next.id));
    if (conversation.divider !== null) this.placeDivider(conversation);
    if (this.stuck) this.stickToBottom();
  }

  // A page of history: its items, with the reader's place kept when it came from above.
  addPage(conversation, ids, { keepPosition }) {
    if (conversation !== this.conversation) return;
    const fromBottom = this.list.scrollHeight - this.list.scrollTop;
    for (const id of [...ids].sort((a, b) => b - a)) this.upsert(conversation, id); // each before the last
    this.markers(conversation);
    this.placeDivider(conversation);
    if (keepPosition) {
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
      this.stuck = this.atBottom();
    }
  }

  // A send added, changed (failed) or gone (stored, dismissed).
  pending(conversation, ref) {
    if (conversation !== this.conversation) return;
    const old = this.pendingItems.get(ref);
    if (!conversation.pending.has(ref)) {
      if (old !== undefined) old.remove();
      this.pendingItems.delete(ref);
      return;
    }
    const node = this.buildPending(ref);
    this.pendingItems.set(ref, node);
    if (old !== undefined) old.replaceWith(node);
    else this.list.append(node);
  }

  markers(conversation) {
    if (conversation !== this.conversation) return;
    const start = conversation.loaded && !conversation.more;
    this.top.textContent = start ? "Start of the conversation" : "Loading older messages…";
    this.top.hidden = !start && !conversation.loading;
    this.newer.hidden = conversation.newerFrom === null;
  }

  // The divider before the first message from someone else after the read marker.
  placeDivider(conversation) {
    if (conversation !== this.conversation) return;
    const target = this.firstUnread(conversation);
    if (target === null) {
      this.divider.remove();
      return;
    }
    const node = this.items.get(target);
    if (this.divider.nextSibling !== node) this.list.insertBefore(this.divider, node);
  }

  firstUnread(conversation) {
    if (conversation.divider === null) return null;
    const me = this.context.me();
    const ids = conversation.ids;
    for (let at = insertionIndex(ids, conversation.divider + 1); at < ids.length; at += 1) {
      if (conversation.messages.get(ids[at]).from !== me) return ids[at];
    }
    return null;
  }

  // The "New messages" line to the top of the view, where a conversation opens; false: none.
  scrollToDivider() {
    if (!this.divider.isConnected) return false;
    this.divider.scrollIntoView({ block: "start" });
    this.stuck = this.atBottom();
    return true;
  }

  item(id) {
    return this.items.get(id) || null;
  }

  atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < BOTTOM_SLACK_PX;
  }

  toBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.stuck = true;
  }

  // To the bottom once the frame's changes are in: one layout for a burst of messages.
  stickToBottom() {
    if (this.stickQueued) return;
    this.stickQueued = true;
    requestAnimationFrame(() => {
      this.stickQueued = false;
      if (this.stuck) this.toBottom();
    });
  }

  build(id) {
    const conversation = this.conversation;
    const message = conversation.messages.get(id);
    if (message.type === "room_event") return systemItem(message);
    const context = this.context;
    return messageItem(message, conversation, {
      me: context.me(),
      canDeleteOthers: context.canDeleteOthers(conversation),
      actions: context.actions,
    });
  }

  buildPending(ref) {
    const conversation = this.conversation;
    const entry = conversation.pending.get(ref);
    return pendingItem(conversation, ref, entry, { me: this.context.me(), actions: this.context.actions });
  }
}
