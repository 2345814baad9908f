// Reading: opening a conversation, its history pages, and the read markers and unread counts
// the server keeps. The base of the page's App (app.js), which adds sending and searching.

import { roomEventText } from "./chat.js";
import { $, pageSeen, prefs } from "./dom.js";
import * as S from "./state.js";

const HISTORY_PAGE = 50;
const OLDER_TRIGGER_PX = 48; // scrolled this close to the top: load an older page
const NEWER_TRIGGER_PX = 48; // ...or this close to the bottom: a newer one (after a jump)
const UNREAD_REFRESH_MS = 150; // read markers from elsewhere come in bursts: ask once
const READ_AFTER_SCROLL_MS = 300; // a read marker once scrolling pauses, not for every frame

export class Reader {
  constructor() {
    this.unreadPages = null; // conversations gathered from `conversations` pages, while paging
    this.listAsked = "conversations"; // "unread" from a server from before `conversations`
    this.unreadAgain = false; // a refresh was asked for while one was running
    this.unreadTimer = null;
    this.whenUnreadKnown = null; // the first view, opened once the unread counts are in
    this.openedBehindSearch = false; // the current conversation opened while a search showed
    this.readTimer = null;
    this.readQueued = false; // a markRead() waits for the next frame
  }

  // behindSearch: the page's own first view, which must not close a search the user started.
  open(key, { keepNotice = false, behindSearch = false } = {}) {
    const state = this.state;
    const previous = state.conversations.get(state.current);
    if (previous && previous.key !== key) {
      previous.divider = null;
      previous.confirmDelete = null;
    }
    if (this.editing !== null && this.editing.key !== key) this.stopEditing(true);
    if (this.search !== null && !behindSearch) this.closeSearch();
    this.openedBehindSearch = this.search !== null;
    if (!keepNotice) this.showNotice("");
    this.composer.error("");
    const conversation = S.conversation(state, key);
    this.composer.setTarget(conversation.target());
    if (conversation.kind === "dm" && S.listConversation(state, key)) this.listChanged(conversation);
    state.current = key;
    prefs.set(state.me, "last", key);
    if (conversation.unread > 0 && conversation.divider === null) conversation.divider = conversation.lastRead;
    if (conversation.kind === "room" && !state.roomInfo.has(conversation.name) && state.rooms.has(conversation.name)) {
      this.askRoomDetails(conversation.name);
    }
    if (this.directoryView.isOpen) this.directoryView.close();
    this.renderHeader();
    this.renderMembers();
    if (conversation.kind === "room" && state.rooms.has(conversation.name)) this.refreshMembers(conversation.name);
    this.toggleMenu(false);
    this.sidebar.select(key);
    this.messages.show(conversation);
    this.messages.toBottom();
    if (!conversation.loaded) {
      // With unread messages: from the read marker on, so the first unread is in view.
      const after = conversation.unread > 0 ? conversation.lastRead : null;
      this.loadHistory(conversation, { after });
    } else {
      this.messages.scrollToDivider();
      this.markRead();
    }
    if (this.search === null) this.composer.focus(); // chosen to write in it
  }

  openNothing() {
    this.state.current = null;
    this.renderHeader();
    this.messages.show(null);
  }

  renderHeader() {
    const state = this.state;
    const conversation = state.conversations.get(state.current);
    const info = conversation && conversation.kind === "room" ? state.roomInfo.get(conversation.name) : undefined;
    $("conversation-title").textContent = conversation ? conversation.label : "";
    $("conversation-topic").textContent = info ? info.topic : "";
    $("conversation-private").hidden = !(info && info.private);
  }

  showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = text === "";
  }

  // A member's `join` changes nothing and answers with the room's role, topic, privacy and
  // members (never creating a room deleted meanwhile).
  askRoomDetails(room) {
    if (!this.connection.isReady) return;
    this.quietRefs.add(this.connection.request({ type: "join", room, create: false }));
  }

  loadHistory(conversation, { before = null, after = null } = {}) {
    if (conversation.loading || !this.connection.isReady) return;
    conversation.loading = true;
    this.messages.markers(conversation);
    const request = { type: "history", limit: HISTORY_PAGE, ...conversation.where() };
    if (conversation.kind === "room") request.events = true; // topics, kicks...: one timeline everywhere
    if (before !== null) request.before = before;
    if (after !== null) request.after = after;
    this.connection.request(request);
  }

  historyPage(asked, event) {
    const key = asked.room !== undefined ? `room:${asked.room}` : `dm:${asked.with}`;
    const conversation = S.conversation(this.state, key);
    conversation.loading = false;
    if (event.type !== "history") {
      // Cut short by a drop: asked again after the login. Else refused (a room left since).
      if (event.code !== "shutting_down" && key === this.state.current) this.composer.error(event.message);
      this.messages.markers(conversation);
      return;
    }
    const first = !conversation.loaded;
    conversation.loaded = true;
    for (const message of event.messages) conversation.put(message);
    const events = Array.isArray(event.events) ? event.events : [];
    for (const item of events) conversation.put({ ...item, text: roomEventText(item, this.state.me) });
    const ids = [...event.messages, ...events].map((item) => item.id).sort((a, b) => a - b);
    if (asked.after !== undefined) {
      const last = ids.length > 0 ? ids[ids.length - 1] : null;
      conversation.newerFrom = event.more && last !== null ? last : null;
    } else {
      conversation.more = event.more;
    }
    if (key !== this.state.current) return;
    if (events.length > 0) this.renderMembers(); // roles the timeline tells
    this.messages.addPage(conversation, ids, { keepPosition: asked.before !== undefined });
    if (first && asked.after !== undefined) this.messages.scrollToDivider();
    else if (first) this.messages.toBottom();
    this.markRead();
    this.scrolled(); // a page that does not fill the view cannot be scrolled
  }

  // Near the top: an older page; near the bottom after a jump: a newer one.
  scrolled() {
    const conversation = this.state.conversations.get(this.state.current);
    if (!conversation || !conversation.loaded) return;
    const list = $("messages");
    if (conversation.more && list.scrollTop <= OLDER_TRIGGER_PX) {
      const oldest = conversation.oldestId();
      if (oldest !== null) this.loadHistory(conversation, { before: oldest });
    }
    if (conversation.newerFrom !== null && list.scrollHeight - list.scrollTop - list.clientHeight <= NEWER_TRIGGER_PX) {
      this.loadHistory(conversation, { after: conversation.newerFrom });
    }
    this.updatePill();
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.markRead(), READ_AFTER_SCROLL_MS);
  }

  // Send `read` up to the newest message the user has seen (at the bottom, or scrolled into
  // view), when the page is looked at: what arrives while scrolled up stays unread.
  markRead() {
    const conversation = this.state.conversations.get(this.state.current);
    if (!conversation || this.connection === null || !this.connection.isReady) return;
    if (!pageSeen() || this.search !== null) return;
    const seen = this.messages.lastSeenId();
    if (seen === null) return;
    const id = S.readTarget(conversation, seen === Infinity ? null : seen);
    if (id === null) return;
    conversation.readAsked = id;
    this.connection.request({ type: "read", ...conversation.where(), id });
  }

  // markRead() once this frame's messages are in: a burst of messages is one `read` (each
  // is a write on the server), not one per message.
  markReadSoon() {
    if (this.readQueued) return;
    this.readQueued = true;
    requestAnimationFrame(() => {
      this.readQueued = false;
      this.markRead();
    });
  }

  // "N new messages" while the view is scrolled up from unread ones; a click jumps down.
  updatePill() {
    const conversation = this.state.conversations.get(this.state.current);
    const count = conversation && !this.messages.stuck ? conversation.unread : 0;
    const pill = $("new-pill");
    pill.hidden = count === 0;
    pill.textContent = `${count} new ${count === 1 ? "message" : "messages"} ↓`;
  }

  refreshUnread() {
    if (this.unreadPages !== null) {
      this.unreadAgain = true;
      return;
    }
    this.unreadPages = [];
    this.connection.request({ type: this.listAsked });
  }

  // Asked for after a read marker this page cannot settle alone; bursts become one request.
  refreshUnreadSoon() {
    clearTimeout(this.unreadTimer);
    this.unreadTimer = setTimeout(() => {
      if (this.connection === null || !this.connection.isReady) return;
      this.refreshUnread();
    }, UNREAD_REFRESH_MS);
  }

  // The first conversation, once the unread counts are in; never instead of what the user
  // did meanwhile: a conversation opened stays, a search stays open in front of it.
  firstView() {
    const open = this.whenUnreadKnown;
    this.whenUnreadKnown = null;
    if (open !== null && this.state.current === null) open();
  }

  // A page of `conversations` (every conversation, with its counts: the sidebar's list), or
  // of `unread` from a server from before it.
  unreadPage(event) {
    if (event.type === "error" && event.code === "unknown_type" && this.listAsked === "conversations") {
      this.listAsked = "unread"; // an older server: this device's list, with the unread ones
      this.unreadPages = null;
      this.refreshUnread();
      return;
    }
    if (event.type !== this.listAsked || this.unreadPages === null) {
      this.unreadPages = null; // cut short: the next login asks again
      this.firstView();
      return;
    }
    this.unreadPages.push(...event.conversations);
    const last = event.conversations[event.conversations.length - 1];
    if (event.more && last !== undefined) {
      this.connection.request({ type: this.listAsked, after: last.key });
      return;
    }
    if (this.listAsked === "conversations") S.applyConversations(this.state, this.unreadPages);
    else S.applyUnread(this.state, this.unreadPages);
    this.unreadPages = null;
    this.sidebar.sync(this.state);
    this.sidebarUpdate(null);
    this.firstView();
    this.markRead();
    if (this.unreadAgain) {
      this.unreadAgain = false;
      this.refreshUnread();
    }
  }
}
