// The open conversation's timeline, windowed (timelinewindow.js): only the rows near the
// view are in the document, keyed by id; pending sends (by ref) always at the end.
//
// In order, the list holds: the top marker (start of the conversation / loading), the
// spacer for the rows above the window, the window's rows, the spacer for the rows below,
// the "newer messages below" marker and the pending sends. A row is one message or room
// event, after its day separator when it is the first of its day and after the "New
// messages" divider when it is the first unread one. Day separators and shared headers
// follow the state (timeline.js), not the document, so a group that starts above the
// window reads the same as in a full list. A run of like room events (a burst of joins)
// shows as one line, on its last row, the others hidden (timeline.js sameRun); a hidden row
// measures zero high, so the window's arithmetic needs nothing more.

import { el } from "./dom.js";
import { insertionIndex } from "./state.js";
import { messageItem, pendingItem, systemItem } from "./messageitem.js";
import { roomRunText } from "./chat.js";
import { continues, dayKey, dayLabel, runKey, sameRun } from "./timeline.js";
import { TimelineWindow } from "./timelinewindow.js";

const DAY_CHECK_MS = 60_000; // how often "Today" is checked for having become "Yesterday"
const RUN_NAMED = 500; // the most events of one run read back for its line

export class MessagesView extends TimelineWindow {
  // context: { me(), canDeleteOthers(conversation), actions } (see messageitem.js);
  // onFollow(): the view was moved to the bottom, following new messages again.
  constructor(list, context, onFollow = () => {}) {
    super(list, onFollow);
    this.context = context;
    this.days = new Map(); // id -> the day separator <li> before it, in the window
    this.found = null; // the id of the search result jumped to: outlined
    this.today = dayKey(new Date());
    this.pendingItems = new Map(); // ref -> <li>
    this.top = el("li", { className: "older" });
    this.newer = el("li", { className: "newer" }, "Scroll down for newer messages…");
    this.divider = el("li", { className: "divider", attrs: { role: "separator" } }, "New messages");
    setInterval(() => this.relabelDays(), DAY_CHECK_MS);
  }

  // Opens `conversation` (null: none) with its newest rows; the caller then scrolls.
  show(conversation) {
    this.reset(conversation);
    this.days.clear();
    this.pendingItems.clear();
    this.found = null;
    if (conversation === null) {
      this.list.replaceChildren();
      return;
    }
    const pending = [...conversation.pending.keys()].map((ref) => {
      const node = this.buildPending(ref);
      this.pendingItems.set(ref, node);
      return node;
    });
    this.list.replaceChildren(this.top, this.above, this.below, this.newer, ...pending);
    this.markers(conversation);
    this.stuck = true;
    this.layout();
  }

  // The same conversation again, where the reader was (buttons depend on the room role).
  rebuild() {
    if (this.conversation === null) return;
    this.touch();
    for (const id of this.windowIds()) {
      const old = this.items.get(id);
      const node = this.build(id);
      node.classList.toggle("continued", old.classList.contains("continued"));
      node.hidden = old.hidden; // inside a run of room events
      this.items.set(id, node);
      old.replaceWith(node);
    }
    this.schedule();
  }

  // One item added or changed: O(1) DOM work (plus a lookup for an out-of-order id); a new
  // one outside the window only changes a spacer's height, in the next frame.
  upsert(conversation, id) {
    if (conversation !== this.conversation) return;
    this.touch();
    const old = this.items.get(id);
    if (old !== undefined) {
      const node = this.build(id);
      this.items.set(id, node);
      old.replaceWith(node);
      this.settle(id);
    } else if (this.belongsInWindow(id)) {
      this.insertRow(id);
    }
    const next = conversation.after(id);
    if (next !== null && this.items.has(next.id)) this.settle(next.id);
    const previous = conversation.before(id);
    if (previous !== null && this.items.has(previous.id)) this.settleRun(previous.id);
    if (conversation.divider !== null) this.placeDivider(conversation);
    if (this.stuck) this.followQueued = true;
    this.schedule();
  }

  // A page of history: its items, with the reader's place kept.
  addPage(conversation, ids, { keepPosition }) {
    if (conversation !== this.conversation) return;
    for (const id of ids) this.upsert(conversation, id);
    this.markers(conversation);
    this.placeDivider(conversation);
    this.layout();
    if (keepPosition) this.stuck = this.atBottom();
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
    this.touch(); // the top marker's line comes and goes above the reader
    const start = conversation.loaded && !conversation.more;
    this.top.textContent = start ? "Start of the conversation" : "Loading older messages…";
    this.top.hidden = !start && !conversation.loading;
    this.newer.hidden = conversation.newerFrom === null;
    this.schedule();
  }

  // A row's nodes, new: its day separator when it is the first of its day, then its item.
  rowNodes(id) {
    const item = this.conversation.messages.get(id);
    const previous = this.conversation.before(id);
    const node = this.build(id);
    this.items.set(id, node);
    node.classList.toggle("continued", continues(previous, item));
    node.hidden = this.hiddenInRun(item);
    if (previous !== null && dayKey(previous.ts) === dayKey(item.ts)) return [node];
    return [this.daySeparator(id), node];
  }

  removeRow(id) {
    const node = this.items.get(id);
    if (this.divider.nextSibling === node) this.divider.remove();
    const separator = this.days.get(id);
    if (separator !== undefined) separator.remove();
    node.remove();
    this.items.delete(id);
    this.days.delete(id);
  }

  // What to scroll into view for row `node`: at its "start", the divider before it.
  revealed(node, block) {
    return block === "start" && this.divider.nextSibling === node ? this.divider : node;
  }

  windowChanged() {
    this.placeDivider(this.conversation);
  }

  // The first node of a row in the window: its day separator, the divider, or its item.
  rowFirst(id) {
    const node = this.items.get(id);
    return this.days.get(id) || (this.divider.nextSibling === node ? this.divider : node);
  }

  // --- day separators, shared headers, the divider ----------------------------------------

  daySeparator(id) {
    const item = this.conversation.messages.get(id);
    const node = el("li", { className: "day", attrs: { role: "separator" }, dataset: { ts: item.ts } }, dayLabel(item.ts));
    this.days.set(id, node);
    return node;
  }

  // After midnight "Today" is "Yesterday": every separator in the window reads again.
  relabelDays() {
    const today = dayKey(new Date());
    if (today === this.today) return;
    this.today = today;
    for (const node of this.days.values()) node.textContent = dayLabel(node.dataset.ts);
  }

  // The day separator before `id` and whether it shares the header of the item before
  // (which may be outside the window: the state says).
  settle(id) {
    const conversation = this.conversation;
    const node = this.items.get(id);
    if (node === undefined) return;
    const item = conversation.messages.get(id);
    const previous = conversation.before(id);
    const newDay = previous === null || dayKey(previous.ts) !== dayKey(item.ts);
    const separator = this.days.get(id);
    if (newDay && separator === undefined) {
      const anchor = this.divider.nextSibling === node ? this.divider : node;
      this.list.insertBefore(this.daySeparator(id), anchor);
    } else if (!newDay && separator !== undefined) {
      separator.remove();
      this.days.delete(id);
    }
    const divided = this.divider.nextSibling === node;
    node.classList.toggle("continued", !newDay && !divided && continues(previous, item));
    this.settleRun(id);
  }

  // --- runs of like room events -----------------------------------------------------------

  // Whether room event `item` is followed by one of its run (then only the run's last shows).
  hiddenInRun(item) {
    return runKey(item) !== null && sameRun(item, this.conversation.after(item.id));
  }

  // Row `id` hidden or shown, and its line, now that a neighbour came or changed (O(1)
  // DOM work: the run itself is read from the conversation when its last row is built).
  settleRun(id) {
    const node = this.items.get(id);
    const item = this.conversation.messages.get(id);
    if (node === undefined || runKey(item) === null) return;
    const hidden = this.hiddenInRun(item);
    if (node.hidden && hidden) return;
    const fresh = this.build(id); // its line names the run it ends (older rows may have come)
    fresh.hidden = hidden;
    fresh.className = node.className;
    this.items.set(id, fresh);
    node.replaceWith(fresh);
  }

  // The run that ends with room event `last`, oldest first (at most RUN_NAMED events).
  runBefore(last) {
    const run = [last];
    let previous = this.conversation.before(last.id);
    while (previous !== null && run.length < RUN_NAMED && sameRun(previous, run[0])) {
      run.unshift(previous);
      previous = this.conversation.before(previous.id);
    }
    return run;
  }

  // The divider before the first message from someone else after the read marker, when
  // that message is in the window.
  placeDivider(conversation) {
    if (conversation !== this.conversation) return;
    const target = this.firstUnread(conversation);
    const node = target === null ? undefined : this.items.get(target);
    if (node === undefined) {
      const was = this.divider.nextSibling;
      this.divider.remove();
      if (was !== null && was.dataset.id !== undefined) this.settle(Number(was.dataset.id));
      return;
    }
    if (this.divider.nextSibling === node) return;
    const was = this.divider.nextSibling;
    this.list.insertBefore(this.divider, node);
    node.classList.remove("continued"); // the line breaks the group
    if (was !== null && was.dataset.id !== undefined) this.settle(Number(was.dataset.id));
  }

  firstUnread(conversation) {
    if (conversation.divider === null) return null;
    const me = this.context.me();
    const ids = conversation.ids;
    for (let at = insertionIndex(ids, conversation.divider + 1); at < ids.length; at += 1) {
      const item = conversation.messages.get(ids[at]);
      if (item.type !== "room_event" && item.from !== me) return ids[at];
    }
    return null;
  }

  // --- where the view is ----------------------------------------------------------------

  // The "New messages" line to the top of the view, where a conversation opens; false: none.
  scrollToDivider() {
    const target = this.conversation === null ? null : this.firstUnread(this.conversation);
    if (target === null) return false;
    return this.reveal(target, "start") !== null;
  }

  // A search result jumped to: brought into view and outlined while it is shown.
  showFound(id) {
    const old = this.items.get(this.found);
    if (old !== undefined) old.classList.remove("found");
    this.found = id;
    const node = this.reveal(id);
    if (node !== null) node.classList.add("found");
    return node;
  }

  build(id) {
    const conversation = this.conversation;
    const message = conversation.messages.get(id);
    const ends = message.type === "room_event" && runKey(message) !== null && !this.hiddenInRun(message);
    const node =
      message.type === "room_event"
        ? systemItem(message, ends ? roomRunText(this.runBefore(message), this.context.me()) : message.text)
        : messageItem(message, conversation, {
            me: this.context.me(),
            canDeleteOthers: this.context.canDeleteOthers(conversation),
            actions: this.context.actions,
          });
    if (id === this.found) node.classList.add("found");
    return node;
  }

  buildPending(ref) {
    const conversation = this.conversation;
    const entry = conversation.pending.get(ref);
    return pendingItem(conversation, ref, entry, { me: this.context.me(), actions: this.context.actions });
  }
}
