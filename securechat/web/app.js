// securechat in the browser: the page's views, driving a ChatSession over one WebSocket.
//
// Everything from the wire goes into the page as text (textContent, text nodes), never as
// markup. The resume token lives only in this module's memory: a reload asks for the
// password again (docs/security.md, "Web client").

import { ChatSession, reconnectDelay } from "./session.js";

const HISTORY_PAGE = 50;
const OLDER_TRIGGER_PX = 48; // scrolled this close to the top: load an older page
const DEFAULT_ROOM = "general";
const WHO_EVERY = 60; // seconds: presence events cover shared rooms only, `who` everyone

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

function randomPrefix() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function conversationKey(message, me) {
  if (message.room !== undefined) return `room:${message.room}`;
  return `dm:${message.from === me ? message.to : message.from}`;
}

function mentions(body, user) {
  const escaped = user.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^a-z0-9._-])@${escaped}(?![a-z0-9._-])`, "i").test(body);
}

// Whether a message that just arrived adds to its conversation's unread count. The one
// place that decides it, so that server-side read state can replace it later.
function countsAsUnread(message, key, app) {
  if (message.from === app.session.user) return false;
  return key !== app.current || document.visibilityState !== "visible";
}

class Conversation {
  constructor(key) {
    this.key = key;
    [this.kind, this.name] = key.split(/:(.*)/s);
    this.messages = new Map(); // id -> message
    this.pending = new Map(); // ref -> { send, status: "sending" | "failed", reason }
    this.unread = 0;
    this.more = true; // older messages may exist
    this.loading = false;
    this.loaded = false; // the newest page has been asked for and received
  }

  get label() {
    return this.kind === "room" ? `#${this.name}` : this.name;
  }

  target() {
    return this.kind === "room" ? { room: this.name } : { to: this.name };
  }

  oldestId() {
    let oldest = null;
    for (const id of this.messages.keys()) if (oldest === null || id < oldest) oldest = id;
    return oldest;
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
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendComposed();
    });
    $("composer-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendComposed();
      }
    });
    $("messages").addEventListener("scroll", () => this.maybeLoadOlder());
    $("menu-toggle").addEventListener("click", () => this.toggleMenu());
    $("logout-button").addEventListener("click", () => this.logout());
    $("notify-button").addEventListener("click", () => this.askNotifications());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && $("chat-view").classList.contains("menu-open")) {
        this.toggleMenu(false);
        $("menu-toggle").focus();
      }
    });
    document.addEventListener("visibilitychange", () => {
      const conversation = this.conversations.get(this.current);
      if (document.visibilityState === "visible" && conversation) {
        conversation.unread = 0;
        this.renderSidebar();
      }
    });
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
        this.reply(event.asked, event.event);
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
    for (const room of welcome.rooms) this.rooms.add(room);
    this.session.request({ type: "who" });
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
    if (valid) this.open(last);
    else if (this.rooms.has(DEFAULT_ROOM)) this.open(`room:${DEFAULT_ROOM}`);
    else this.join(DEFAULT_ROOM);
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
    if (countsAsUnread(message, key, this)) conversation.unread += 1;
    this.notify(message, key);
    this.renderSidebar();
    if (key === this.current) this.renderMessages();
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
    if (conversation.key === this.current) this.renderMessages();
  }

  reply(asked, event) {
    if (asked.type === "history") {
      const key = asked.room !== undefined ? `room:${asked.room}` : `dm:${asked.with}`;
      const conversation = this.conversation(key);
      conversation.loading = false;
      if (event.type !== "history") return; // failed (e.g. the connection dropped): try again later
      conversation.loaded = true;
      conversation.more = event.more;
      for (const message of event.messages) conversation.messages.set(message.id, message);
      if (key === this.current) {
        this.renderMessages({ keepPosition: asked.before !== undefined });
        this.maybeLoadOlder(); // a page that does not fill the view cannot be scrolled
      }
    } else if (asked.type === "join") {
      if (event.type === "joined") {
        this.rooms.add(event.room);
        $("join-room").value = "";
        $("join-error").textContent = "";
        this.open(`room:${event.room}`);
      } else {
        $("join-error").textContent = event.message;
      }
    } else if (asked.type === "who" && event.type === "who") {
      this.online = new Set(event.online);
      this.renderSidebar();
    }
  }

  pushed(event) {
    if (event.type === "presence") {
      if (event.online) this.online.add(event.user);
      else this.online.delete(event.user);
      this.renderSidebar();
    } else if ((event.type === "member_joined" || event.type === "member_left") && event.user === this.session.user) {
      // This user joined or left in another session (the terminal client, another tab).
      if (event.type === "member_joined") this.rooms.add(event.room);
      else this.rooms.delete(event.room);
      this.renderSidebar();
    } else if (event.type === "error") {
      this.setStatus(this.session && this.session.isReady ? "online" : "offline", event.message);
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

  open(key) {
    const conversation = this.conversation(key);
    if (conversation.kind === "dm") this.rememberDm(conversation.name);
    this.current = key;
    conversation.unread = 0;
    prefs.set(this.session.user, "last", key);
    $("conversation-title").textContent = conversation.label;
    this.toggleMenu(false);
    this.renderSidebar();
    this.renderMessages({ toBottom: true });
    if (!conversation.loaded) this.loadHistory(conversation);
  }

  loadHistory(conversation, before = null) {
    if (conversation.loading || !this.session.isReady) return;
    conversation.loading = true;
    const request = { type: "history", limit: HISTORY_PAGE };
    if (conversation.kind === "room") request.room = conversation.name;
    else request.with = conversation.name;
    if (before !== null) request.before = before;
    this.session.request(request);
    this.pump();
  }

  maybeLoadOlder() {
    const conversation = this.conversations.get(this.current);
    if (!conversation || !conversation.loaded || !conversation.more) return;
    if ($("messages").scrollTop > OLDER_TRIGGER_PX) return;
    const oldest = conversation.oldestId();
    if (oldest !== null) this.loadHistory(conversation, oldest);
  }

  join(raw) {
    const room = raw.trim().toLowerCase().replace(/^#/, "");
    if (!room) return;
    if (!this.session.isReady) {
      $("join-error").textContent = "Not connected; try again in a moment.";
      return;
    }
    this.session.request({ type: "join", room });
    this.pump();
  }

  rememberDm(name) {
    if (this.dms.has(name) || name === this.session.user) return;
    this.dms.add(name);
    prefs.set(this.session.user, "dms", [...this.dms].sort());
  }

  sendComposed() {
    const input = $("composer-input");
    const body = input.value;
    const conversation = this.conversations.get(this.current);
    if (!body.trim() || !conversation) return;
    input.value = "";
    this.submit(conversation, body);
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
    }
  }

  renderSidebar() {
    const me = this.session ? this.session.user : "";
    const item = (key) => {
      const conversation = this.conversation(key);
      const button = el("button", { attrs: { type: "button" }, dataset: { key } }, conversation.label);
      if (key === this.current) button.setAttribute("aria-current", "true");
      if (conversation.unread > 0) {
        const label = `${conversation.unread} unread`;
        button.append(el("span", { className: "badge", attrs: { "aria-label": label } }, String(conversation.unread)));
      }
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
    for (const id of ids) {
      const message = conversation.messages.get(id);
      items.push(this.messageItem(message, message.from === me ? "sent" : null));
    }
    for (const [ref, entry] of conversation.pending) {
      const draft = { from: me, body: entry.send.body, ts: null };
      items.push(this.messageItem(draft, entry.status, { conversation, ref, reason: entry.reason }));
    }
    list.replaceChildren(...items);
    if (keepPosition) list.scrollTop = list.scrollHeight - fromBottom;
    else if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
  }

  messageItem(message, status, failed = null) {
    const me = this.session.user;
    const classes = ["message"];
    if (message.from === me) classes.push("mine");
    else if (mentions(message.body, me)) classes.push("mention");
    const meta = el("div", { className: "meta" }, el("span", { className: "from" }, message.from));
    if (message.ts) {
      const when = new Date(message.ts);
      const text = Number.isNaN(when.getTime()) ? message.ts : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      meta.append(el("time", { attrs: { datetime: message.ts } }, text));
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
    const dataset = message.id !== undefined ? { id: message.id } : {};
    if (status !== null) dataset.status = status;
    return el("li", { className: classes.join(" "), dataset }, meta, el("p", { className: "body" }, message.body));
  }
}

new App();
