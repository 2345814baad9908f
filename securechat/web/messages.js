// The open conversation's timeline: one <li> per message, keyed by id (pending sends by ref).
//
// Opening a conversation builds the list once; after that each change touches its own item:
// a new message is one insertion (at the end, or where its id falls for older pages), an
// edit one replacement. Around the items sit three nodes kept for the view's life: the top
// marker (start of the conversation / loading), the "newer messages below" marker after the
// last item, and the "New messages" divider, moved before the first unread message.
// Each item may have a day separator before it (the first of its day) and may share the
// header of the one before (timeline.js); an insertion settles that for itself and its
// next neighbour only. A run of like room events (a burst of joins) shows as one line, on
// its last item, the others hidden (timeline.js sameRun).

import { el } from "./dom.js";
import { insertionIndex } from "./state.js";
import { messageItem, pendingItem, systemItem } from "./messageitem.js";
import { roomRunText } from "./chat.js";
import { continues, dayKey, dayLabel, runKey, sameRun } from "./timeline.js";

const BOTTOM_SLACK_PX = 40; // this close to the bottom counts as at the bottom
const DAY_CHECK_MS = 60_000; // how often "Today" is checked for having become "Yesterday"
const RUN_NAMED = 500; // the most events of one run read back for its line

export class MessagesView {
  // context: { me(), canDeleteOthers(conversation), actions } (see messageitem.js);
  // onFollow(): the view was moved to the bottom, following new messages again.
  constructor(list, context, onFollow = () => {}) {
    this.onFollow = onFollow;
    this.list = list;
    this.context = context;
    this.conversation = null;
    this.items = new Map(); // id -> <li>
    this.days = new Map(); // id -> the day separator <li> before it
    this.today = dayKey(new Date());
    this.pendingItems = new Map(); // ref -> <li>
    this.top = el("li", { className: "older" });
    this.newer = el("li", { className: "newer" }, "Scroll down for newer messages…");
    this.divider = el("li", { className: "divider", attrs: { role: "separator" } }, "New messages");
    this.stuck = true; // the view follows new messages (it was at the bottom)
    this.stickQueued = false;
    this.autoTop = 0; // where toBottom() left scrollTop
    list.addEventListener("scroll", () => {
      // Our own scroll, or one the browser made for content that grew: still following.
      if (this.stuck && this.list.scrollTop >= this.autoTop - 1) return;
      this.stuck = this.atBottom();
    });
    setInterval(() => this.relabelDays(), DAY_CHECK_MS);
  }

  // Builds the whole list for `conversation` (null: none open).
  show(conversation) {
    this.conversation = conversation;
    this.items.clear();
    this.days.clear();
    this.pendingItems.clear();
    if (conversation === null) {
      this.list.replaceChildren();
      return;
    }
    const nodes = [this.top];
    let previous = null;
    for (const id of conversation.ids) {
      const node = this.build(id);
      const item = conversation.messages.get(id);
      this.items.set(id, node);
      if (previous === null || dayKey(previous.ts) !== dayKey(item.ts)) nodes.push(this.daySeparator(id));
      node.classList.toggle("continued", continues(previous, item));
      if (sameRun(previous, item)) this.items.get(previous.id).hidden = true;
      nodes.push(node);
      previous = item;
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

  daySeparator(id) {
    const item = this.conversation.messages.get(id);
    const node = el("li", { className: "day", attrs: { role: "separator" }, dataset: { ts: item.ts } }, dayLabel(item.ts));
    this.days.set(id, node);
    return node;
  }

  // After midnight "Today" is "Yesterday": every separator reads again (a few per view).
  relabelDays() {
    const today = dayKey(new Date());
    if (today === this.today) return;
    this.today = today;
    for (const node of this.days.values()) node.textContent = dayLabel(node.dataset.ts);
  }

  // The day separator before `id` and whether it shares the header of the item before.
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
    if (runKey(item) !== null) this.settleRun(id, previous, node);
  }

  // A run of like room events around `id`: each item hidden but the last, whose line
  // names the run (O(1) DOM work; the run is read from the conversation).
  settleRun(id, previous, node) {
    const conversation = this.conversation;
    const item = conversation.messages.get(id);
    const previousNode = previous === null ? undefined : this.items.get(previous.id);
    if (previousNode !== undefined && runKey(previous) !== null) previousNode.hidden = sameRun(previous, item);
    let last = item;
    for (let next = conversation.after(id); next !== null && sameRun(last, next); next = conversation.after(next.id)) last = next;
    node.hidden = last !== item;
    const lastNode = this.items.get(last.id);
    if (lastNode !== undefined) lastNode.textContent = roomRunText(this.runBefore(last), this.context.me());
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
      this.settle(id);
      return;
    }
    let next = conversation.after(id);
    while (next !== null && !this.items.has(next.id)) next = conversation.after(next.id); // a page's other items
    const anchor = next === null ? this.newer : this.days.get(next.id) || this.items.get(next.id);
    this.list.insertBefore(node, anchor);
    if (conversation.divider !== null) this.placeDivider(conversation);
    this.settle(id);
    if (next !== null) this.settle(next.id);
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

  // The divider before the first message from someone else after the read marker (room
  // events are never unread: a join after the marker does not take the line).
  placeDivider(conversation) {
    if (conversation !== this.conversation) return;
    const target = this.firstUnread(conversation);
    const node = target === null ? undefined : this.items.get(target); // not built yet: a page's insertions
    if (node === undefined) {
      this.divider.remove();
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

  // The newest id the reader has seen: every id while the view follows the bottom, else the
  // last item whose top is inside the view or above it (scrolled past). null: none.
  lastSeenId() {
    const conversation = this.conversation;
    if (conversation === null || this.list.hidden) return null;
    if (this.stuck || this.atBottom()) return Infinity;
    const ids = conversation.ids;
    const bottom = this.list.scrollTop + this.list.clientHeight;
    let low = 0;
    let high = ids.length; // ids[..low) start above `bottom`: a binary search over offsetTop
    while (low < high) {
      const mid = (low + high) >> 1;
      const node = this.items.get(ids[mid]);
      if (node !== undefined && node.offsetTop < bottom) low = mid + 1;
      else high = mid;
    }
    return low > 0 ? ids[low - 1] : null;
  }

  atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < BOTTOM_SLACK_PX;
  }

  toBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.autoTop = this.list.scrollTop;
    this.stuck = true;
    this.onFollow();
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
    if (message.type === "room_event") {
      const ends = runKey(message) !== null && !sameRun(message, conversation.after(id)); // shows its run
      const text = ends ? roomRunText(this.runBefore(message), this.context.me()) : message.text;
      return systemItem(message, text);
    }
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
