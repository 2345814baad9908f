// The timeline's window: which rows of the open conversation are in the document, and the
// reader's place kept while they change. The base of MessagesView (messages.js), which
// says what a row is; the arithmetic is in listwindow.js.
//
// Theory of operation. The list holds a spacer standing for the rows above the window, the
// window's rows and a spacer for the rows below it (the subclass adds markers around them).
// A row keeps the height measured when it was last in the document; the others count as
// the mean, so the spacers keep the scroll height right. Every change is laid out once per
// frame (layout()): it measures the rows in the document, takes the reader's place (the
// bottom while following new messages, else the row at the top of the view, captured before
// the first change of the frame: touch()), chooses the window around it and scrolls so that
// the place stays put: history prepended above, a row edited or measured again, nothing
// moves under the reader. A new message next to the window's end is one insertion; anywhere
// else only a spacer's height changes.
//
// A subclass provides rowNodes(id) (a new row's nodes, its item recorded in `items`),
// rowFirst(id) (a row's first node), removeRow(id), windowChanged() (after each layout) and
// revealed(node, block) (what to scroll into view for a row), and sets `conversation`.

import { el } from "./dom.js";
import { Heights, rowAt, rowsAround, spacers } from "./listwindow.js";
import { insertionIndex } from "./state.js";

const BOTTOM_SLACK_PX = 40; // this close to the bottom counts as at the bottom
const MARGIN_PX = 800; // rows kept in the document beyond each edge of the view

function setHeight(node, px) {
  const value = `${Math.max(0, Math.round(px))}px`;
  if (node.style.height !== value) node.style.height = value;
}

function setAttribute(node, name, value) {
  const text = String(value);
  if (node.getAttribute(name) !== text) node.setAttribute(name, text);
}

export class TimelineWindow {
  // onFollow(): the view was moved to the bottom, following new messages again.
  constructor(list, onFollow) {
    this.list = list;
    this.onFollow = onFollow;
    this.conversation = null;
    this.items = new Map(); // id -> <li>, for the rows in the window
    this.lo = null; // the window: its first and last id (null: no row in the document)
    this.hi = null;
    this.heights = new Heights();
    this.width = 0; // the list's width the heights were measured at
    this.above = el("li", { className: "spacer", attrs: { "aria-hidden": "true" } });
    this.below = el("li", { className: "spacer", attrs: { "aria-hidden": "true" } });
    this.stuck = true; // the view follows new messages (it was at the bottom)
    this.autoTop = 0; // where the view last put scrollTop while following
    this.anchor = null; // the reader's place before this frame's changes (see capture())
    this.anchored = false; // ...taken
    this.place = null; // ...and when the list was last shown (it is hidden behind a search)
    this.wasHidden = false;
    this.queued = false; // a layout is asked for the next frame
    this.followQueued = false; // ...and then onFollow(), still following
    list.addEventListener("scroll", () => {
      // Our own scroll, or one the browser made for content that grew: still following.
      if (!this.stuck || this.list.scrollTop < this.autoTop - 1) this.stuck = this.atBottom();
      this.schedule();
    });
    new ResizeObserver(() => this.resized()).observe(list);
  }

  // A conversation opened: nothing of the last one's window or place is kept.
  reset(conversation) {
    this.conversation = conversation;
    this.items.clear();
    this.heights.clear();
    this.lo = null;
    this.hi = null;
    this.anchor = null;
    this.anchored = false;
    this.place = null;
    setHeight(this.above, 0);
    setHeight(this.below, 0);
  }

  // Inside the window, or right after its last row (the newest while following), or the
  // first row of an empty window: else a spacer stands for it.
  belongsInWindow(id) {
    if (this.lo === null) return this.conversation.ids.length === 1;
    if (id > this.lo && id < this.hi) return true;
    const previous = this.conversation.before(id);
    return id > this.hi && previous !== null && previous.id === this.hi;
  }

  // The ids of the rows in the document, oldest first.
  windowIds() {
    if (this.lo === null) return [];
    const ids = this.conversation.ids;
    return ids.slice(insertionIndex(ids, this.lo), insertionIndex(ids, this.hi) + 1);
  }

  visible() {
    return !this.list.hidden && this.list.clientHeight > 0;
  }

  // The reader's place: { bottom: true } while following, else the first row whose bottom
  // is inside the view and how far its top is from the view's top; null: the view is on a
  // spacer (a jump). Taken before a change, so that layout() can keep it.
  capture() {
    if (this.stuck) return { bottom: true };
    if (!this.visible() || this.wasHidden) return this.place;
    const top = this.list.scrollTop;
    for (const id of this.windowIds()) {
      const node = this.items.get(id);
      if (node.offsetTop + node.offsetHeight > top) {
        return node.offsetTop < top + this.list.clientHeight ? { id, offset: node.offsetTop - top } : null;
      }
    }
    return null;
  }

  // Before the first change of a frame: where the reader is, to keep them there.
  touch() {
    if (this.anchored) return;
    this.anchor = this.capture();
    this.anchored = true;
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      if (this.queued) this.layout();
      if (this.followQueued && this.stuck) this.onFollow(); // not before: an opening may scroll away
      this.followQueued = false;
    });
  }

  resized() {
    const width = this.list.clientWidth;
    if (width > 0 && width !== this.width) {
      this.width = width;
      this.heights.clear(); // lines wrap elsewhere now: every row is measured again
    }
    this.schedule();
  }

  // Measures the window's rows, moves the window to the reader's place, sets the spacers and
  // scrolls the place back where it was. See the top of this file.
  layout() {
    this.queued = false;
    const conversation = this.conversation;
    if (conversation === null) return;
    if (!this.visible()) {
      this.wasHidden = true; // its scroll position is gone: `place` says where it was
      return;
    }
    this.measure();
    let anchor = this.anchored ? this.anchor : this.wasHidden ? this.place : this.capture();
    if (anchor !== null && anchor.bottom && !this.stuck) anchor = this.capture(); // scrolled up meanwhile
    this.anchor = null;
    this.anchored = false;
    this.wasHidden = false;
    const ids = conversation.ids;
    const view = this.list.clientHeight;
    let at = ids.length;
    let offset = view;
    if (anchor !== null && !anchor.bottom && conversation.messages.has(anchor.id)) {
      at = insertionIndex(ids, anchor.id);
      offset = anchor.offset;
    } else if (anchor === null || !anchor.bottom) {
      const from = this.above.offsetTop;
      const found = rowAt(ids, this.heights, Math.max(0, this.list.scrollTop - from));
      at = found.index;
      offset = from + found.top - this.list.scrollTop;
    }
    const { start, end } = rowsAround(ids, this.heights, at, offset, view, MARGIN_PX);
    this.reconcile(start, end);
    const space = spacers(ids, this.heights, start, end);
    setHeight(this.above, space.above);
    setHeight(this.below, space.below);
    this.windowChanged();
    if (anchor !== null && anchor.bottom) {
      this.list.scrollTop = this.list.scrollHeight;
      this.autoTop = this.list.scrollTop;
    } else if (at < ids.length) {
      const want = this.items.get(ids[at]).offsetTop - offset;
      if (Math.abs(this.list.scrollTop - want) >= 1) this.list.scrollTop = want;
    }
    this.place = this.capture();
  }

  // Each row's height: from its top (separator or divider included) to the next row's.
  measure() {
    let previous = null;
    let top = 0;
    for (const id of this.windowIds()) {
      const first = this.rowFirst(id).offsetTop;
      if (previous !== null) this.heights.set(previous, first - top);
      previous = id;
      top = first;
    }
    if (previous !== null) this.heights.set(previous, this.below.offsetTop - top);
  }

  // Makes rows [start, end) of the conversation the window: rows that left it are removed,
  // rows that came into it are built; the others stay as they are.
  reconcile(start, end) {
    const ids = this.conversation.ids;
    const from = this.lo === null ? 0 : insertionIndex(ids, this.lo);
    const to = this.lo === null ? 0 : insertionIndex(ids, this.hi) + 1;
    const overlaps = start < to && end > from;
    for (let at = from; at < to; at += 1) if (!overlaps || at < start || at >= end) this.removeRow(ids[at]);
    const before = document.createDocumentFragment();
    const after = document.createDocumentFragment();
    for (let at = start; at < end; at += 1) {
      if (overlaps && at >= from && at < to) continue;
      (overlaps && at < from ? before : after).append(...this.rowNodes(ids[at]));
    }
    if (overlaps && start < from) this.list.insertBefore(before, this.rowFirst(ids[from]));
    this.list.insertBefore(after, this.below);
    this.lo = end > start ? ids[start] : null;
    this.hi = end > start ? ids[end - 1] : null;
    for (let at = start; at < end; at += 1) {
      const node = this.items.get(ids[at]);
      setAttribute(node, "aria-posinset", at + 1); // the list's size, for screen readers
      setAttribute(node, "aria-setsize", ids.length);
    }
  }

  // A row that came into the window by itself (a new message): before the next row.
  insertRow(id) {
    const next = this.conversation.after(id);
    const anchor = next !== null && this.items.has(next.id) ? this.rowFirst(next.id) : this.below;
    for (const node of this.rowNodes(id)) this.list.insertBefore(node, anchor);
    if (this.lo === null || id < this.lo) this.lo = id;
    if (this.hi === null || id > this.hi) this.hi = id;
  }

  // Brings message `id` into the view (the window moved there), at its "start" (the
  // divider before it, if any) or "center"; its item, or null when it is not loaded.
  reveal(id, block = "center") {
    const conversation = this.conversation;
    if (conversation === null || !conversation.messages.has(id) || !this.visible()) return null;
    this.stuck = false;
    const view = this.list.clientHeight;
    const offset = block === "start" ? 0 : Math.max(0, (view - this.heights.of(id)) / 2);
    this.anchor = { id, offset };
    this.anchored = true;
    this.layout();
    const node = this.items.get(id);
    this.revealed(node, block).scrollIntoView({ block });
    this.stuck = this.atBottom();
    return node;
  }

  item(id) {
    return this.items.get(id) || null;
  }

  // The newest id the reader has seen: every id while the view follows the bottom, else the
  // last row whose top is inside the view or above it (scrolled past). null: none.
  lastSeenId() {
    const conversation = this.conversation;
    if (conversation === null || this.list.hidden) return null;
    if (this.stuck || this.atBottom()) return Infinity;
    const bottom = this.list.scrollTop + this.list.clientHeight;
    const shown = this.windowIds();
    for (let at = shown.length - 1; at >= 0; at -= 1) {
      if (this.items.get(shown[at]).offsetTop < bottom) return shown[at];
    }
    const before = this.lo === null ? null : conversation.before(this.lo); // the window is below the view
    return before === null ? null : before.id;
  }

  atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < BOTTOM_SLACK_PX;
  }

  toBottom() {
    this.stuck = true;
    this.anchor = { bottom: true };
    this.anchored = true;
    this.layout();
    this.autoTop = this.list.scrollTop;
    this.followQueued = false;
    this.onFollow();
  }
}
