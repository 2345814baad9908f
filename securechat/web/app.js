// securechat in the browser: the page's views, driving a ChatSession over one WebSocket.
//
// Everything from the wire goes into the page as text (textContent, text nodes), never as
// markup. The resume token lives only in this module's memory: a reload asks for the
// password again (docs/security.md, "Web client").

import { conversationKey, mentionSpans, mentions, parseCommand, roomEventText, unreadKey } from "./chat.js";
import { ChatSession, reconnectDelay } from "./session.js";

const HISTORY_PAGE = 50;
const SEARCH_PAGE = 20;
const OLDER_TRIGGER_PX = 48; // scrolled this close to the top: load an older page
const NEWER_TRIGGER_PX = 48; // ...or this close to the bottom: a newer one (after a jump)
const DEFAULT_ROOM = "general";
const WHO_EVERY = 60; // seconds: presence events cover shared rooms only, `who` everyone
const UNREAD_REFRESH_MS = 150; // read markers from elsewhere come in bursts: ask once
const MODERATORS = new Set(["owner", "moderator"]);

const $ = (id) => document.getElementById(id);
const now = () => performance.now() / 1000;

// An element with text children: strings become text nodes, never markup.
function el(tag, { className, attrs = {}, dataset = {} } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const [name, value] of Object.entries(dataset)) node.dataset[name] = String(value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Per-user preferences kept on this device (never the token or the password).
const prefs = {
  get(user, name, fallback) {
    try {
      const raw = localStorage.getItem(`securechat.${name}.${user}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(user, name, value) {
    try {
      localStorage.setItem(`securechat.${name}.${user}`, JSON.stringify(value));
    } catch {
      // storage full or disabled: the preference is simply not remembered
    }
  },
};

// A message time as a <time> element: the hour, or the date and hour (search results).
function timeOf(ts, withDate = false) {
  const when = new Date(ts);
  const options = withDate
    ? { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  const text = Number.isNaN(when.getTime()) ? ts : when.toLocaleString([], options);
  return el("time", { attrs: { datetime: ts } }, text);
}

// A body as text nodes, with each @mention of `user` in a <mark>: still text, never markup.
function withMentions(body, user) {
  const parts = [];
  let at = 0;
  for (const [start, end] of mentionSpans(body, user)) {
    if (start > at) parts.push(body.slice(at, start));
    parts.push(el("mark", { className: "at-me" }, body.slice(start, end)));
    at = end;
  }
  if (at < body.length || parts.length === 0) parts.push(body.slice(at));
  return parts;
}

function randomPrefix() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Whether the user can be taken to be looking at the page: read markers move only then.
function pageSeen() {
  return document.visibilityState === "visible" && document.hasFocus();
}

class Conversation {
  constructor(key) {
    this.key = key;
    [this.kind, this.name] = key.split(/:(.*)/s);
    this.messages = new Map(); // id -> message, or a room event (type "room_event")
    this.pending = new Map(); // ref -> { send, status: "sending" | "failed", reason }
    this.unread = 0; // the server's count (unread), plus what arrived since
    this.mentions = 0;
    this.lastRead = 0; // the read marker, as the server last said
    this.readAsked = 0; // the highest id a `read` was sent for
    this.divider = null; // "new messages" after this id, while the conversation is open
    this.more = true; // older messages may exist
    this.newerFrom = null; // opened at the read marker: newer pages follow from this id
    this.loading = false;
    this.loaded = false; // a first page has been asked for and received
    this.confirmDelete = null; // the id whose deletion waits for a confirmation
  }

  get label() {
    return this.kind === "room" ? `#${this.name}` : this.name;
  }

  target() {
    return this.kind === "room" ? { room: this.name } : { to: this.name };
  }

  // How history and read markers name the conversation.
  where() {
    return this.kind === "room" ? { room: this.name } : { with: this.name };
  }

  oldestId() {
    let oldest = null;
    for (const id of this.messages.keys()) if (oldest === null || id < oldest) oldest = id;
    return oldest;
  }

  newestId() {
    let newest = null;
    for (const id of this.messages.keys()) if (newest === null || id > newest) newest = id;
    return newest;
  }

  // The newest message of `user` that can still be edited: what ArrowUp edits.
  lastOwn(user) {
    let last = null;
    for (const message of this.messages.values()) {
      if (message.type === "room_event" || message.from !== user || message.deleted) continue;
      if (last === null || message.id > last.id) last = message;
    }
    return last;
  }

  clearUnread() {
    this.unread = 0;
    this.mentions = 0;
  }
}

class App {
  constructor() {
    this.session = null;
    this.ws = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.tickTimer = null;
    this.conversations = new Map();
    this.rooms = new Set();
    this.dms = new Set();
    this.online = new Set();
    this.current = null;
    this.stopped = true; // no reconnecting: logged out, refused, or never logged in
    this.whoTimer = null;
    this.roomInfo = new Map(); // room -> { role, topic, private, muted } from `joined` and events
    this.quietRefs = new Set(); // `join`s that only ask a room's details: no view change
    this.commandRefs = new Map(); // ref -> last id seen, of requests typed as slash commands
    this.unreadPages = null; // conversations gathered from `unread` pages, while paging
    this.unreadAgain = false; // a refresh was asked for while one was running
    this.unreadTimer = null;
    this.whenUnreadKnown = null; // the first view, opened once the unread counts are in
    this.firstJoin = null; // the room the first view joins, when there was none to open
    this.openedBehindSearch = false; // the current conversation opened while a search showed
    this.editing = null; // { key, id } while the composer edits a message
    this.search = null; // { query, results, more, loading, next }
    this.notices = new Map(); // room -> why we were removed, told when `left` comes
    this.bind();
  }

  // --- wiring ---------------------------------------------------------------------------

  bind() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.login();
    });
    $("join-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.join($("join-room").value);
    });
    $("create-button").addEventListener("click", () => this.create($("join-room").value, $("create-private").checked));
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.startSearch($("search-input").value);
    });
    $("search-more").addEventListener("click", () => this.searchMore());
    $("search-close").addEventListener("click", () => this.closeSearch());
    $("edit-cancel").addEventListener("click", () => this.stopEditing(true));
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendComposed();
    });
    $("composer-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendComposed();
      } else if (e.key === "ArrowUp" && e.target.value === "" && this.editing === null) {
        const conversation = this.conversations.get(this.current);
        const last = conversation ? conversation.lastOwn(this.session.user) : null;
        if (last !== null) {
          e.preventDefault();
          this.startEditing(conversation, last);
        }
      } else if (e.key === "Escape" && this.editing !== null) {
        e.preventDefault();
        e.stopPropagation();
        this.stopEditing(true);
      }
    });
    $("messages").addEventListener("scroll", () => {
      this.maybeLoadOlder();
      this.maybeLoadNewer();
    });
    $("menu-toggle").addEventListener("click", () => this.toggleMenu());
    $("logout-button").addEventListener("click", () => this.logout());
    $("notify-button").addEventListener("click", () => this.askNotifications());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && $("chat-view").classList.contains("menu-open")) {
        this.toggleMenu(false);
        $("menu-toggle").focus();
      }
    });
    document.addEventListener("visibilitychange", () => this.markRead());
    window.addEventListener("focus", () => this.markRead());
    this.updateNotifyButton();
  }

  // --- login and the connection ---------------------------------------------------------

  login() {
    const user = $("login-user").value.trim();
    const password = $("login-password").value;
    if (!user || !password) {
      this.loginError("Enter your user name and password.");
      return;
    }
    this.loginError("");
    $("login-submit").disabled = true;
    this.session = new ChatSession({ user, password, sendPrefix: randomPrefix() });
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  connect() {
    this.reconnectTimer = null;
    this.setStatus(this.session.logins > 0 ? "reconnecting" : "connecting");
    const ws = new WebSocket(`wss://${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.session.connectionMade(now());
      this.pump();
    });
    ws.addEventListener("message", (e) => {
      if (ws !== this.ws || typeof e.data !== "string") return;
      this.session.receive(e.data, now());
      this.pump();
    });
    ws.addEventListener("close", () => {
      if (ws !== this.ws || this.session === null) return;
      this.ws = null;
      this.session.connectionLost("connection closed");
      this.pump();
      this.afterClose();
    });
  }

  pump() {
    // Events may queue requests; requests never make events by themselves.
    const session = this.session;
    if (session === null) return;
    for (const event of session.takeEvents()) this.handle(event);
    if (session !== this.session) return; // logged out meanwhile
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      for (const text of session.takeOutgoing()) ws.send(text);
    }
    clearTimeout(this.tickTimer);
    const due = session.nextDeadline();
    if (due !== null) {
      this.tickTimer = setTimeout(() => {
        session.tick(now());
        this.pump();
      }, Math.max(0, (due - now()) * 1000) + 10);
    }
  }

  afterClose() {
    clearTimeout(this.tickTimer);
    if (this.stopped) return;
    if (this.session.logins === 0) {
      this.stopped = true;
      this.showLogin("Cannot reach the server. Try again in a moment.");
      return;
    }
    const delay = reconnectDelay(this.attempt);
    this.attempt += 1;
    this.setStatus("reconnecting", `Reconnecting in ${delay.toFixed(1)} s…`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay * 1000);
  }

  logout() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.tickTimer);
    if (this.session !== null) {
      this.session.close();
      const ws = this.ws;
      if (ws !== null && ws.readyState === WebSocket.OPEN) {
        for (const text of this.session.takeOutgoing()) ws.send(text);
        ws.close(1000);
      }
    }
    this.ws = null;
    this.session = null;
    this.showLogin("");
  }

  // --- what the session reports ----------------------------------------------------------

  handle(event) {
    switch (event.kind) {
      case "logged_in":
        this.loggedIn(event.welcome, event.resumed);
        break;
      case "refused":
        this.refused(event.error, event.withToken);
        break;
      case "message":
        this.receive(event.message);
        break;
      case "delivered":
        this.delivered(event.ref, event.message);
        break;
      case "send_failed":
        this.sendFailed(event);
        break;
      case "reply":
        this.reply(event.ref, event.asked, event.event);
        break;
      case "pushed":
        this.pushed(event.event);
        break;
      case "ended":
        if (this.ws !== null) this.ws.close(1000);
        break;
      default:
        break; // caught_up and what later versions add
    }
  }

  loggedIn(welcome, resumed) {
    this.attempt = 0;
    this.setStatus("online");
    const user = welcome.user;
    if (resumed) {
      for (const room of [...this.rooms]) if (!welcome.rooms.includes(room)) this.removeRoom(room);
    }
    for (const room of welcome.rooms) this.rooms.add(room);
    this.session.request({ type: "who" });
    this.refreshUnread(); // after a drop too: what was read elsewhere meanwhile
    if (resumed) {
      this.renderSidebar();
      const current = this.conversations.get(this.current);
      if (current && !current.loaded) this.loadHistory(current); // cut short by the drop
      return;
    }
    $("login-password").value = "";
    $("login-submit").disabled = false;
    clearInterval(this.whoTimer);
    this.whoTimer = setInterval(() => {
      if (this.session !== null && this.session.isReady) {
        this.session.request({ type: "who" });
        this.pump();
      }
    }, WHO_EVERY * 1000);
    $("whoami").textContent = user;
    for (const name of prefs.get(user, "dms", [])) this.dms.add(name);
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    const last = prefs.get(user, "last", null);
    const valid = typeof last === "string" && (last.startsWith("dm:") || this.rooms.has(last.slice(5)));
    const first = valid ? last : this.rooms.has(DEFAULT_ROOM) ? `room:${DEFAULT_ROOM}` : null;
    // Opened with its unread count known, so that it opens at the first unread message.
    this.whenUnreadKnown = () => {
      if (first === null) {
        this.firstJoin = DEFAULT_ROOM;
        this.join(DEFAULT_ROOM);
      } else {
        this.open(first, { behindSearch: true });
      }
    };
    $("composer-input").focus();
  }

  refused(error, withToken) {
    this.stopped = true;
    let text = error.message;
    if (error.code === "auth_failed") {
      text = withToken ? "Your session has ended. Log in again." : "Wrong user name or password.";
    } else if (error.code === "rate_limited") {
      text = `Too many failed logins. Try again in ${Math.ceil(error.retry_after || 1)} s.`;
    }
    this.showLogin(text);
  }

  receive(message) {
    const me = this.session.user;
    const key = conversationKey(message, me);
    const conversation = this.conversation(key);
    if (conversation.kind === "dm") this.rememberDm(conversation.name);
    else this.rooms.add(conversation.name); // joined from another session, say
    conversation.messages.set(message.id, message);
    const seen = key === this.current && pageSeen() && this.search === null;
    if (message.from !== me && message.id > conversation.lastRead && !message.deleted && !seen) {
      if (key === this.current && conversation.unread === 0) {
        conversation.divider = conversation.lastRead; // what arrives while away is new
      }
      conversation.unread += 1;
      if (mentions(message.body, me)) conversation.mentions += 1;
    }
    this.notify(message, key);
    this.renderSidebar();
    if (key === this.current) {
      this.renderMessages();
      this.markRead();
    }
  }

  delivered(ref, message) {
    const conversation = this.conversation(conversationKey(message, this.session.user));
    conversation.pending.delete(ref);
    conversation.messages.set(message.id, message);
    if (conversation.key === this.current) this.renderMessages();
  }

  sendFailed({ ref, send, code, reason }) {
    const conversation = this.conversation(conversationKey({ ...send, from: this.session.user }, this.session.user));
    conversation.pending.set(ref, { send, status: "failed", reason: `${reason} (${code})` });
    if (conversation.key === this.current) {
      this.renderMessages();
      this.composerError(`Not sent: ${reason}`); // e.g. "you are muted in #ops"
    }
  }

  reply(ref, asked, event) {
    const command = this.commandRefs.has(ref);
    const seenBefore = this.commandRefs.get(ref);
    this.commandRefs.delete(ref);
    const quiet = this.quietRefs.delete(ref);
    if (event.type === "error" && command) {
      this.composerError(event.message);
      return;
    }
    switch (asked.type) {
      case "history":
        this.historyPage(asked, event);
        break;
      case "join":
      case "create":
        this.joinedReply(asked, event, { quiet, command });
        break;
      case "leave":
        if (event.type === "left") this.removeRoom(event.room);
        break;
      case "who":
        if (event.type === "who") {
          this.online = new Set(event.online);
          this.renderSidebar();
        }
        break;
      case "unread":
        this.unreadPage(event);
        break;
      case "read":
        if (event.type === "read") this.readMarker(event);
        break;
      case "edit":
      case "delete":
        if (event.type === "ack") this.changed(asked, event.ts);
        else this.composerError(event.message);
        break;
      case "search":
        this.searchPage(asked, event);
        break;
      case "moderate":
        // The server tells the room but not the session that acted: the event is in the
        // journal, so a sync from before the command brings it (what else it brings was seen).
        if (event.type === "done" && seenBefore !== undefined) {
          this.session.request({ type: "sync", since: seenBefore });
        }
        break;
      default:
        break;
    }
  }

  historyPage(asked, event) {
    const key = asked.room !== undefined ? `room:${asked.room}` : `dm:${asked.with}`;
    const conversation = this.conversation(key);
    conversation.loading = false;
    if (event.type !== "history") {
      // Cut short by a drop: asked again after the login. Else refused (a room left since).
      if (event.code !== "shutting_down" && key === this.current) this.composerError(event.message);
      return;
    }
    const first = !conversation.loaded;
    conversation.loaded = true;
    for (const message of event.messages) conversation.messages.set(message.id, message);
    if (asked.after !== undefined) {
      const last = event.messages.length > 0 ? event.messages[event.messages.length - 1].id : null;
      conversation.newerFrom = event.more && last !== null ? last : null;
    } else {
      conversation.more = event.more;
    }
    if (key !== this.current) return;
    if (first && asked.after !== undefined) {
      this.renderMessages();
      this.scrollToFirstUnread();
    } else {
      this.renderMessages({ keepPosition: asked.before !== undefined });
    }
    this.markRead();
    this.maybeLoadOlder(); // a page that does not fill the view cannot be scrolled
    this.maybeLoadNewer();
  }

  joinedReply(asked, event, { quiet, command }) {
    if (event.type !== "joined") {
      if (!quiet) $("join-error").textContent = event.message;
      return;
    }
    this.rooms.add(event.room);
    this.roomInfo.set(event.room, {
      role: event.role || "member",
      topic: event.topic || "",
      private: event.private === true,
      muted: event.muted === true,
    });
    if (quiet) {
      if (this.current === `room:${event.room}`) {
        this.renderHeader();
        this.renderMessages(); // a moderator's Delete buttons on others' messages
      }
      return;
    }
    if (!command) {
      $("join-room").value = "";
      $("create-private").checked = false;
      $("join-error").textContent = "";
    }
    const first = this.firstJoin === event.room;
    this.firstJoin = null;
    if (first && this.current !== null) {
      this.renderSidebar(); // the user opened another one meanwhile: it stays
      return;
    }
    this.open(`room:${event.room}`, { behindSearch: first });
    if (this.search === null) $("composer-input").focus();
  }

  pushed(event) {
    const me = this.session.user;
    if (event.type === "presence") {
      if (event.online) this.online.add(event.user);
      else this.online.delete(event.user);
      this.renderSidebar();
    } else if ((event.type === "member_joined" || event.type === "member_left") && event.user === me) {
      // This user joined or left in another session (the terminal client, another tab).
      if (event.type === "member_joined") this.rooms.add(event.room);
      else this.removeRoom(event.room);
      this.renderSidebar();
    } else if (event.type === "left") {
      this.removeRoom(event.room); // kicked, banned, or the room was deleted
    } else if (event.type === "room_event") {
      this.roomEvent(event);
    } else if (event.type === "edited" || event.type === "deleted") {
      this.changedElsewhere(event);
    } else if (event.type === "read") {
      this.readMarker(event);
    } else if (event.type === "error") {
      this.setStatus(this.session && this.session.isReady ? "online" : "offline", event.message);
    }
  }

  // --- unread and read markers, kept by the server -----------------------------------------

  refreshUnread() {
    if (this.unreadPages !== null) {
      this.unreadAgain = true;
      return;
    }
    this.unreadPages = [];
    this.session.request({ type: "unread" });
  }

  // The first conversation, once the unread counts are in; never instead of what the user
  // did meanwhile: a conversation opened stays, a search stays open in front of it.
  firstView() {
    const open = this.whenUnreadKnown;
    this.whenUnreadKnown = null;
    if (open !== null && this.current === null) open();
  }

  // Asked for after a read marker this page cannot settle alone; bursts become one request.
  refreshUnreadSoon() {
    clearTimeout(this.unreadTimer);
    this.unreadTimer = setTimeout(() => {
      if (this.session === null || !this.session.isReady) return;
      this.refreshUnread();
      this.pump();
    }, UNREAD_REFRESH_MS);
  }

  unreadPage(event) {
    if (event.type !== "unread" || this.unreadPages === null) {
      this.unreadPages = null; // cut short: the next login asks again
      this.firstView();
      return;
    }
    this.unreadPages.push(...event.conversations);
    const last = event.conversations[event.conversations.length - 1];
    if (event.more && last !== undefined) {
      this.session.request({ type: "unread", after: last.key });
      return;
    }
    const counts = new Map(this.unreadPages.map((entry) => [unreadKey(entry), entry]));
    this.unreadPages = null;
    for (const [key, conversation] of this.conversations) {
      if (!counts.has(key)) conversation.clearUnread();
    }
    for (const [key, entry] of counts) {
      const conversation = this.conversation(key);
      if (conversation.kind === "dm") this.rememberDm(conversation.name);
      else this.rooms.add(conversation.name);
      conversation.unread = entry.count;
      conversation.mentions = entry.mentions;
      conversation.lastRead = Math.max(conversation.lastRead, entry.last_read);
    }
    this.renderSidebar();
    this.firstView();
    this.markRead();
    if (this.unreadAgain) {
      this.unreadAgain = false;
      this.refreshUnread();
    }
  }

  // Send `read` up to the newest message shown, when the user can see it.
  markRead() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || this.session === null || !this.session.isReady) return;
    if (!pageSeen() || this.search !== null) return;
    // Up to the last message shown in a row: not past a gap that newer pages will fill.
    const newest = conversation.newerFrom !== null ? conversation.newerFrom : conversation.newestId();
    if (newest === null || newest <= conversation.lastRead || newest <= conversation.readAsked) return;
    conversation.readAsked = newest;
    this.session.request({ type: "read", ...conversation.where(), id: newest });
    this.pump();
  }

  // A read marker: the reply to ours, or news from another session of this user.
  readMarker(event) {
    const key = typeof event.room === "string" ? `room:${event.room}` : `dm:${event.with}`;
    const conversation = this.conversation(key);
    conversation.lastRead = Math.max(conversation.lastRead, event.id);
    const newest = conversation.newestId();
    if (newest !== null && event.id >= newest && conversation.newerFrom === null) {
      conversation.clearUnread();
    } else {
      this.refreshUnreadSoon(); // only the server knows what is left unread
    }
    this.renderSidebar();
  }

  // --- rooms: details, events, removal -------------------------------------------------------

  roomEvent(event) {
    const me = this.session.user;
    const room = event.room;
    const info = this.roomInfo.get(room);
    if (info !== undefined) {
      if (event.action === "topic") info.topic = event.topic || "";
      else if (event.action === "private" || event.action === "public") info.private = event.action === "private";
      else if (event.user === me && (event.action === "op" || event.action === "deop")) {
        info.role = event.action === "op" ? "moderator" : "member";
      } else if (event.action === "transfer") {
        if (event.user === me) info.role = "owner";
        else if (info.role === "owner") info.role = "moderator";
      } else if (event.user === me && (event.action === "mute" || event.action === "unmute")) {
        info.muted = event.action === "mute";
      }
    }
    if (event.action === "create" && event.actor === me) this.rooms.add(room); // another session
    const text = roomEventText(event, me);
    if ((event.user === me && (event.action === "kick" || event.action === "ban")) || event.action === "delete") {
      this.notices.set(room, text);
    }
    const conversation = this.conversation(`room:${room}`);
    conversation.messages.set(event.id, { ...event, text });
    if (conversation.key === this.current) {
      this.renderHeader();
      this.renderMessages();
    }
    this.renderSidebar();
  }

  removeRoom(room) {
    if (!this.rooms.has(room)) return;
    this.rooms.delete(room);
    this.roomInfo.delete(room);
    const key = `room:${room}`;
    const conversation = this.conversations.get(key);
    if (conversation) conversation.clearUnread();
    const why = this.notices.get(room);
    this.notices.delete(room);
    this.showNotice(why ? `You are no longer in #${room}: ${why}.` : `You are no longer in #${room}.`);
    if (this.current === key) {
      this.conversations.delete(key);
      const next = this.rooms.has(DEFAULT_ROOM) ? DEFAULT_ROOM : [...this.rooms].sort()[0];
      if (next !== undefined) this.open(`room:${next}`, { keepNotice: true });
      else this.openNothing();
    } else {
      this.conversations.delete(key);
    }
    this.renderSidebar();
  }

  // --- edit and delete --------------------------------------------------------------------------

  findMessage(id) {
    for (const conversation of this.conversations.values()) {
      const message = conversation.messages.get(id);
      if (message !== undefined && message.type !== "room_event") return { conversation, message };
    }
    return null;
  }

  // Our own edit or deletion was acknowledged: show it as the other sessions will.
  changed(asked, ts) {
    const found = this.findMessage(asked.id);
    if (found === null) return;
    if (asked.type === "edit") this.apply(found, { body: asked.body, edited: ts });
    else this.apply(found, { body: "", deleted: true });
  }

  changedElsewhere(event) {
    const found = this.findMessage(event.target);
    if (found === null) return; // not loaded here: history will show it as it is now
    if (event.type === "edited") {
      this.apply(found, { body: event.body, edited: event.ts });
      return;
    }
    const { conversation, message } = found;
    const me = this.session.user;
    if (message.from !== me && message.id > conversation.lastRead && conversation.unread > 0 && !message.deleted) {
      conversation.unread -= 1; // as the server counts: deleted messages are not unread
      if (mentions(message.body, me) && conversation.mentions > 0) conversation.mentions -= 1;
      this.renderSidebar();
    }
    this.apply(found, { body: "", deleted: true });
  }

  apply({ conversation, message }, change) {
    conversation.messages.set(message.id, { ...message, ...change });
    if (change.deleted && this.editing !== null && this.editing.id === message.id) this.stopEditing(true);
    if (conversation.key === this.current) this.renderMessages();
  }

  startEditing(conversation, message) {
    this.editing = { key: conversation.key, id: message.id };
    const input = $("composer-input");
    input.value = message.body;
    $("edit-bar").hidden = false;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  stopEditing(clear) {
    if (this.editing === null) return;
    this.editing = null;
    $("edit-bar").hidden = true;
    if (clear) $("composer-input").value = "";
  }

  askDelete(conversation, id) {
    conversation.confirmDelete = id;
    this.renderMessages();
    const yes = $("messages").querySelector("[data-confirm='yes']");
    if (yes) yes.focus();
  }

  confirmDelete(conversation, id, yes) {
    conversation.confirmDelete = null;
    if (yes) {
      this.session.request({ type: "delete", id });
      this.pump();
    }
    this.renderMessages();
    $("composer-input").focus();
  }

  canDeleteOthers(conversation) {
    if (conversation.kind !== "room") return false;
    const info = this.roomInfo.get(conversation.name);
    return info !== undefined && MODERATORS.has(info.role);
  }

  // --- search -------------------------------------------------------------------------------------

  startSearch(raw) {
    const query = raw.trim();
    this.toggleMenu(false);
    $("search-view").hidden = false;
    $("messages").hidden = true;
    if (query.length < 3) {
      this.search = { query, results: [], more: false, loading: false, next: null };
      this.renderSearch("Type at least 3 characters.");
      return;
    }
    this.search = { query, results: [], more: false, loading: false, next: null };
    this.searchFrom(null);
  }

  searchFrom(before) {
    const search = this.search;
    if (search === null || search.loading) return;
    if (!this.session.isReady) {
      this.renderSearch("Not connected; try again in a moment.");
      return;
    }
    search.loading = true;
    const request = { type: "search", query: search.query, limit: SEARCH_PAGE };
    if (before !== null) request.before = before;
    this.session.request(request);
    this.pump();
    this.renderSearch();
  }

  searchMore() {
    if (this.search !== null && this.search.next !== null) this.searchFrom(this.search.next);
  }

  searchPage(asked, event) {
    const search = this.search;
    if (search === null || asked.query !== search.query) return; // a search since replaced
    search.loading = false;
    if (event.type !== "search") {
      this.renderSearch(event.message);
      return;
    }
    search.results.push(...event.messages);
    search.more = event.more;
    // Where to go on: the server says (older than the last result when its work limit for
    // one search ended the page early, with "cut").
    const last = event.messages.length > 0 ? event.messages[event.messages.length - 1].id : null;
    search.next = event.next_before ?? last;
    this.renderSearch();
  }

  closeSearch() {
    this.search = null;
    $("search-view").hidden = true;
    $("messages").hidden = false;
    if (this.openedBehindSearch) {
      // Rendered while hidden, it could not be scrolled: show it as an opening shows it.
      this.openedBehindSearch = false;
      if (!this.scrollToFirstUnread()) $("messages").scrollTop = $("messages").scrollHeight;
    }
    this.markRead();
  }

  openResult(message) {
    this.closeSearch();
    const key = conversationKey(message, this.session.user);
    this.open(key);
    const item = $("messages").querySelector(`[data-id="${Number(message.id)}"]`);
    if (item) {
      item.classList.add("found");
      item.scrollIntoView({ block: "center" });
    }
  }

  // --- actions ----------------------------------------------------------------------------

  conversation(key) {
    let conversation = this.conversations.get(key);
    if (conversation === undefined) {
      conversation = new Conversation(key);
      this.conversations.set(key, conversation);
    }
    return conversation;
  }

  // behindSearch: the page's own first view, which must not close a search the user started.
  open(key, { keepNotice = false, behindSearch = false } = {}) {
    const previous = this.conversations.get(this.current);
    if (previous && previous.key !== key) {
      previous.divider = null;
      previous.confirmDelete = null;
    }
    if (this.editing !== null && this.editing.key !== key) this.stopEditing(true);
    if (this.search !== null && !behindSearch) this.closeSearch();
    this.openedBehindSearch = this.search !== null;
    if (!keepNotice) this.showNotice("");
    this.composerError("");
    const conversation = this.conversation(key);
    if (conversation.kind === "dm") this.rememberDm(conversation.name);
    this.current = key;
    prefs.set(this.session.user, "last", key);
    if (conversation.unread > 0 && conversation.divider === null) conversation.divider = conversation.lastRead;
    if (conversation.kind === "room" && !this.roomInfo.has(conversation.name) && this.rooms.has(conversation.name)) {
      this.askRoomDetails(conversation.name);
    }
    this.renderHeader();
    this.toggleMenu(false);
    this.renderSidebar();
    this.renderMessages({ toBottom: true });
    if (!conversation.loaded) {
      // With unread messages: from the read marker on, so the first unread is in view.
      const after = conversation.unread > 0 ? conversation.lastRead : null;
      this.loadHistory(conversation, { after });
    } else {
      this.scrollToFirstUnread();
      this.markRead();
    }
  }

  // The "New messages" line to the top of the view, where a conversation opens; false: none.
  scrollToFirstUnread() {
    const divider = $("messages").querySelector(".divider");
    if (divider) divider.scrollIntoView({ block: "start" });
    return divider !== null;
  }

  openNothing() {
    this.current = null;
    this.renderHeader();
    this.renderMessages();
  }

  // A member's `join` changes nothing and answers with the room's role, topic and privacy.
  askRoomDetails(room) {
    if (!this.session.isReady) return;
    this.quietRefs.add(this.session.request({ type: "join", room }));
    this.pump();
  }

  loadHistory(conversation, { before = null, after = null } = {}) {
    if (conversation.loading || !this.session.isReady) return;
    conversation.loading = true;
    const request = { type: "history", limit: HISTORY_PAGE, ...conversation.where() };
    if (before !== null) request.before = before;
    if (after !== null) request.after = after;
    this.session.request(request);
    this.pump();
  }

  maybeLoadNewer() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || conversation.newerFrom === null) return;
    const list = $("messages");
    if (list.scrollHeight - list.scrollTop - list.clientHeight > NEWER_TRIGGER_PX) return;
    this.loadHistory(conversation, { after: conversation.newerFrom });
  }

  maybeLoadOlder() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || !conversation.loaded || !conversation.more) return;
    if ($("messages").scrollTop > OLDER_TRIGGER_PX) return;
    const oldest = conversation.oldestId();
    if (oldest !== null) this.loadHistory(conversation, { before: oldest });
  }

  join(raw) {
    this.roomRequest(raw, (room) => ({ type: "join", room }));
  }

  create(raw, isPrivate) {
    this.roomRequest(raw, (room) => ({ type: "create", room, private: isPrivate }));
  }

  roomRequest(raw, build) {
    const room = raw.trim().toLowerCase().replace(/^#/, "");
    if (!room) return;
    if (!this.session.isReady) {
      $("join-error").textContent = "Not connected; try again in a moment.";
      return;
    }
    this.session.request(build(room));
    this.pump();
  }

  rememberDm(name) {
    if (this.dms.has(name) || name === this.session.user) return;
    this.dms.add(name);
    prefs.set(this.session.user, "dms", [...this.dms].sort());
  }

  sendComposed() {
    const input = $("composer-input");
    let body = input.value;
    const conversation = this.conversations.get(this.current);
    if (!body.trim() || !conversation) return;
    this.composerError("");
    if (this.editing !== null) {
      this.sendEdit(body);
      return;
    }
    const command = parseCommand(body, conversation.kind === "room" ? conversation.name : null);
    if (command !== null && command.error !== undefined) {
      this.composerError(command.error); // the text stays, to be corrected
      return;
    }
    if (command !== null && command.request !== undefined) {
      if (!this.session.isReady) {
        this.composerError("Not connected; try again in a moment.");
        return;
      }
      input.value = "";
      const seen = this.session.lastId;
      this.commandRefs.set(this.session.request(command.request), seen);
      this.pump();
      return;
    }
    if (command !== null) body = command.send;
    input.value = "";
    this.submit(conversation, body);
  }

  sendEdit(body) {
    const { id } = this.editing;
    const found = this.findMessage(id);
    this.stopEditing(true);
    if (found === null || found.message.body === body) return; // nothing to change
    if (!this.session.isReady) {
      this.composerError("Not connected: the message was not edited.");
      return;
    }
    this.session.request({ type: "edit", id, body });
    this.pump();
  }

  submit(conversation, body) {
    const send = this.session.submit(body, conversation.target());
    conversation.pending.set(send.ref, { send, status: "sending" });
    this.renderMessages({ toBottom: true });
    this.pump();
  }

  retry(conversation, ref) {
    const entry = conversation.pending.get(ref);
    conversation.pending.delete(ref);
    if (entry) this.submit(conversation, entry.send.body);
  }

  // --- notifications ----------------------------------------------------------------------

  updateNotifyButton() {
    const button = $("notify-button");
    button.hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  askNotifications() {
    if (!("Notification" in window)) return;
    Notification.requestPermission().then(() => this.updateNotifyButton());
  }

  notify(message, key) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const me = this.session.user;
    if (message.from === me) return;
    const direct = message.to !== undefined;
    if (!direct && !mentions(message.body, me)) return;
    if (key === this.current && document.visibilityState === "visible") return;
    const title = direct ? message.from : `${message.from} in #${message.room}`;
    const notification = new Notification(title, { body: message.body.slice(0, 200), tag: key });
    notification.addEventListener("click", () => {
      window.focus();
      this.open(key);
    });
  }

  // --- rendering --------------------------------------------------------------------------

  showLogin(text) {
    clearInterval(this.whoTimer);
    clearTimeout(this.unreadTimer);
    this.roomInfo.clear();
    this.quietRefs.clear();
    this.commandRefs.clear();
    this.notices.clear();
    this.whenUnreadKnown = null;
    this.firstJoin = null;
    this.unreadPages = null;
    this.unreadAgain = false;
    this.stopEditing(true);
    if (this.search !== null) this.closeSearch();
    this.showNotice("");
    $("chat-view").hidden = true;
    $("login-view").hidden = false;
    $("login-submit").disabled = false;
    this.loginError(text);
    this.conversations.clear();
    this.rooms.clear();
    this.dms.clear();
    this.online.clear();
    this.current = null;
    $("login-password").focus();
  }

  loginError(text) {
    $("login-error").textContent = text;
  }

  composerError(text) {
    $("composer-error").textContent = text;
  }

  showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = text === "";
  }

  renderHeader() {
    const conversation = this.conversations.get(this.current);
    const info = conversation && conversation.kind === "room" ? this.roomInfo.get(conversation.name) : undefined;
    $("conversation-title").textContent = conversation ? conversation.label : "";
    $("conversation-topic").textContent = info ? info.topic : "";
    $("conversation-private").hidden = !(info && info.private);
  }

  setStatus(state, text) {
    const status = $("connection-status");
    status.dataset.state = state;
    const labels = { online: "Online", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };
    status.textContent = text || labels[state];
  }

  toggleMenu(open) {
    const chat = $("chat-view");
    const isOpen = open === undefined ? !chat.classList.contains("menu-open") : open;
    const wasOpen = chat.classList.contains("menu-open");
    chat.classList.toggle("menu-open", isOpen);
    $("menu-toggle").setAttribute("aria-expanded", String(isOpen));
    if (isOpen && !wasOpen) {
      const first = $("sidebar").querySelector("button, input");
      if (first) first.focus(); // keyboard users land in the menu they opened
    } else if (!isOpen && wasOpen && $("sidebar").contains(document.activeElement)) {
      $("composer-input").focus(); // ...and in the composer when a choice there closes it
    }
  }

  renderSidebar() {
    const me = this.session ? this.session.user : "";
    const item = (key) => {
      const conversation = this.conversation(key);
      const button = el("button", { attrs: { type: "button" }, dataset: { key } }, conversation.label);
      if (key === this.current) button.setAttribute("aria-current", "true");
      const badges = el("span", { className: "badges" });
      if (conversation.mentions > 0) {
        const label = `${conversation.mentions} unread ${conversation.mentions === 1 ? "mention" : "mentions"}`;
        badges.append(el("span", { className: "badge mention", attrs: { "aria-label": label } }, `@${conversation.mentions}`));
      }
      if (conversation.unread > 0) {
        const label = `${conversation.unread} unread`;
        badges.append(el("span", { className: "badge unread", attrs: { "aria-label": label } }, String(conversation.unread)));
      }
      if (badges.childElementCount > 0) button.append(badges);
      button.addEventListener("click", () => this.open(key));
      return el("li", {}, button);
    };
    $("room-list").replaceChildren(...[...this.rooms].sort().map((room) => item(`room:${room}`)));
    $("dm-list").replaceChildren(...[...this.dms].sort().map((name) => item(`dm:${name}`)));
    const others = [...this.online].filter((user) => user !== me).sort();
    $("online-list").replaceChildren(
      ...others.map((user) => {
        const button = el(
          "button",
          { attrs: { type: "button", title: `Message ${user}` }, dataset: { user } },
          el("span", { className: "dot", attrs: { "aria-hidden": "true" } }, "●"),
          user,
        );
        button.addEventListener("click", () => this.open(`dm:${user}`));
        return el("li", {}, button);
      }),
    );
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread;
    document.title = total > 0 ? `(${total}) securechat` : "securechat";
    $("menu-toggle").textContent = total > 0 ? `Conversations (${total})` : "Conversations";
  }

  renderMessages({ toBottom = false, keepPosition = false } = {}) {
    const list = $("messages");
    const conversation = this.conversations.get(this.current);
    if (!conversation) {
      list.replaceChildren();
      return;
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const fromBottom = list.scrollHeight - list.scrollTop;
    const me = this.session.user;
    const items = [];
    if (conversation.loaded && !conversation.more) {
      items.push(el("li", { className: "older" }, "Start of the conversation"));
    } else if (conversation.loading) {
      items.push(el("li", { className: "older" }, "Loading older messages…"));
    }
    const ids = [...conversation.messages.keys()].sort((a, b) => a - b);
    let divided = conversation.divider === null;
    for (const id of ids) {
      const message = conversation.messages.get(id);
      if (!divided && id > conversation.divider && message.from !== me) {
        items.push(el("li", { className: "divider", attrs: { role: "separator" } }, "New messages"));
        divided = true;
      }
      if (message.type === "room_event") {
        items.push(el("li", { className: "system", dataset: { id } }, message.text));
      } else {
        items.push(this.messageItem(message, message.from === me ? "sent" : null, null, conversation));
      }
    }
    if (conversation.newerFrom !== null) {
      items.push(el("li", { className: "older" }, "Scroll down for newer messages…"));
    }
    for (const [ref, entry] of conversation.pending) {
      const draft = { from: me, body: entry.send.body, ts: null };
      items.push(this.messageItem(draft, entry.status, { conversation, ref, reason: entry.reason }));
    }
    list.replaceChildren(...items);
    if (keepPosition) list.scrollTop = list.scrollHeight - fromBottom;
    else if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
  }

  messageItem(message, status, failed = null, conversation = null) {
    const me = this.session.user;
    const classes = ["message"];
    if (message.from === me) classes.push("mine");
    else if (mentions(message.body, me)) classes.push("mention");
    if (message.deleted) classes.push("deleted");
    const meta = el("div", { className: "meta" }, el("span", { className: "from" }, message.from));
    if (message.ts) meta.append(timeOf(message.ts));
    if (message.edited && !message.deleted) {
      meta.append(el("span", { className: "edited", attrs: { title: `edited ${message.edited}` } }, "(edited)"));
    }
    if (status !== null) {
      const labels = { sending: "sending…", sent: "sent", failed: "failed" };
      const badge = el("span", { className: "status", dataset: { status } }, labels[status]);
      if (status === "failed" && failed !== null) {
        badge.title = failed.reason || "";
        const retry = el("button", { className: "quiet", attrs: { type: "button" } }, "Retry");
        retry.addEventListener("click", () => this.retry(failed.conversation, failed.ref));
        badge.append(" ", retry);
      }
      meta.append(badge);
    }
    if (conversation !== null && message.id !== undefined && !message.deleted) {
      const actions = this.messageActions(conversation, message);
      if (actions !== null) meta.append(actions);
    }
    const dataset = message.id !== undefined ? { id: message.id } : {};
    if (status !== null) dataset.status = status;
    const body = message.deleted ? ["message deleted"] : withMentions(message.body, me);
    return el("li", { className: classes.join(" "), dataset }, meta, el("p", { className: "body" }, ...body));
  }

  // Edit and delete on one's own messages; delete on others' for a room's moderators.
  messageActions(conversation, message) {
    const mine = message.from === this.session.user;
    if (!mine && !this.canDeleteOthers(conversation)) return null;
    const button = (label, name, action, dataset = {}) => {
      const node = el("button", { className: "quiet small", attrs: { type: "button", "aria-label": label }, dataset }, name);
      node.addEventListener("click", action);
      return node;
    };
    if (conversation.confirmDelete === message.id) {
      return el(
        "span",
        { className: "actions confirm" },
        "Delete this message?",
        button("Yes, delete the message", "Delete", () => this.confirmDelete(conversation, message.id, true), { confirm: "yes" }),
        button("Keep the message", "Cancel", () => this.confirmDelete(conversation, message.id, false)),
      );
    }
    const actions = el("span", { className: "actions" });
    if (mine) actions.append(button("Edit message", "Edit", () => this.startEditing(conversation, message)));
    actions.append(button("Delete message", "Delete", () => this.askDelete(conversation, message.id)));
    return actions;
  }

  renderSearch(status = null) {
    const search = this.search;
    if (search === null) return;
    const results = search.results;
    let text = status;
    if (text === null) {
      if (search.loading) text = `Searching for “${search.query}”…`;
      else if (results.length === 0 && search.more) text = `Nothing found for “${search.query}” in the newest messages; older ones may hold it.`;
      else if (results.length === 0) text = `Nothing found for “${search.query}”.`;
      else text = `${results.length}${search.more ? "+" : ""} found for “${search.query}”, newest first.`;
    }
    $("search-status").textContent = text;
    $("search-results").replaceChildren(
      ...results.map((message) => {
        const key = conversationKey(message, this.session.user);
        const where = new Conversation(key);
        const label = where.kind === "room" ? where.label : `DM with ${where.name}`;
        const button = el(
          "button",
          { className: "result", attrs: { type: "button" }, dataset: { id: message.id, key } },
          el("span", { className: "meta" }, el("span", { className: "where" }, label), el("span", { className: "from" }, message.from), timeOf(message.ts, true)),
          el("span", { className: "body" }, message.body),
        );
        button.addEventListener("click", () => this.openResult(message));
        return el("li", {}, button);
      }),
    );
    $("search-more").hidden = !search.more || search.loading;
  }
}

new App();
