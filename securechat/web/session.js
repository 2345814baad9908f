// The browser's side of protocol v1 without I/O: the mirror of securechat/protocol/client.py.
//
// A ChatSession is one user's login across every WebSocket the page opens. Its driver
// (app.js) calls connectionMade() when a socket opens, receive() with each text message,
// sends what takeOutgoing() returns, acts on takeEvents(), calls tick() by nextDeadline(),
// and connectionLost() when the socket ends. Time is passed in; nothing here touches the
// DOM, a socket or a clock.
//
// After hello the session logs in by itself: with the password at first, then with the
// resume token from the last welcome (the password is dropped at the first welcome, token
// or not; with no token, the next hello is a refused login). A later login is a
// resumption: it asks for sync from the last message id seen, page after page, and resends
// every send not yet acknowledged under its original ref, which the server de-duplicates.
// Message ids already seen are dropped, so a catch-up never shows a message twice. Edits,
// deletions and room events share the messages' id sequence (the journal): they move the
// last id seen too. An ack never does: the server may ack a message (or an edit) before it
// delivers an earlier one, which a sync from the ack's id would miss; the ack's id is
// marked seen instead. `rooms` follows the welcome, joined and left (a reply, or pushed on
// a kick, a ban or the room's deletion), a room_event delete, and member_joined /
// member_left naming this user (its other sessions).
//
// The same rules, as scripted server streams, are tests/vectors/session*.json, which
// securechat/protocol/client.py's ClientSession runs too.

export const PROTOCOL_VERSION = 1;
export const PONG_TIMEOUT = 10; // seconds an unanswered heartbeat ping may wait
const SEEN_IDS = 20000; // message ids remembered for de-duplication
const RETRY_FIRST = 1; // seconds before resending a send refused with server_error, doubling...
const RETRY_CAP = 30; // ...up to this
const JOURNAL = new Set(["edited", "deleted", "room_event"]); // pushed with a journal id

// The fields this session reads, by event type: a frame without them ends the connection,
// as ClientSession's decoder (which checks every field) does. The views check the rest.
const isId = (value) => Number.isInteger(value) && value >= 0;
const isText = (value) => typeof value === "string";
const hasId = (event) => isId(event.id);
const READS = {
  hello: (e) => isId(e.protocol) && isId(e.heartbeat),
  welcome: (e) => isText(e.user) && Array.isArray(e.rooms) && e.rooms.every(isText) && isId(e.last_id)
    && (e.token === undefined || e.token === null || isText(e.token)),
  message: hasId,
  edited: hasId,
  deleted: hasId,
  room_event: (e) => hasId(e) && isText(e.room),
  ack: hasId,
  synced: (e) => isId(e.last_id) && typeof e.more === "boolean",
  error: (e) => isText(e.code),
  joined: (e) => isText(e.room),
  left: (e) => isText(e.room),
  member_joined: (e) => isText(e.room) && isText(e.user),
  member_left: (e) => isText(e.room) && isText(e.user),
};

export const State = Object.freeze({
  DISCONNECTED: "disconnected",
  AWAITING_HELLO: "awaiting_hello",
  AUTHENTICATING: "authenticating",
  READY: "ready",
  CLOSING: "closing",
  CLOSED: "closed",
});

export class ChatSession {
  constructor({ user, password = null, token = null, sendPrefix = "w", remember = false, device = false }) {
    this.user = user;
    this.password = password;
    this.token = token;
    this.remember = remember; // ask for a device_grant with the password (docs/protocol.md, "Devices")
    this.device = device; // log in with the device cookie the upgrade carries, until a token comes
    this.sendPrefix = sendPrefix;
    this.state = State.DISCONNECTED;
    this.hello = null;
    this.rooms = [];
    this.lastId = 0;
    this.logins = 0;
    this.out = [];
    this.events = [];
    this.refs = 0;
    this.sendRefs = 0;
    this.pending = new Map(); // ref -> what was asked (answered by one reply)
    this.catchUpRef = null;
    this.unacked = new Map(); // ref -> send; insertion order = resend order
    this.retryDue = new Map(); // ref -> when to resend a refused send
    this.retryDelay = new Map(); // ref -> next server_error back-off
    this.seen = new Set();
    this.seenOrder = [];
    this.lastHeard = 0;
    this.pingSent = null;
  }

  // --- the driver's calls -------------------------------------------------------------

  connectionMade(now) {
    this.state = State.AWAITING_HELLO;
    this.out = [];
    this.lastHeard = now;
    this.pingSent = null;
  }

  receive(text, now) {
    if (this.state === State.DISCONNECTED || this.state === State.CLOSED) return;
    this.lastHeard = now;
    this.pingSent = null;
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      this.end("the server sent an invalid message");
      return;
    }
    const reads = event !== null && typeof event === "object" ? READS[event.type] : undefined;
    if (event === null || typeof event !== "object" || typeof event.type !== "string"
      || (reads !== undefined && !reads(event))) {
      this.end("the server sent an invalid message");
      return;
    }
    this.dispatch(event, now);
  }

  takeOutgoing() {
    const out = this.out;
    this.out = [];
    return out;
  }

  takeEvents() {
    const events = this.events;
    this.events = [];
    return events;
  }

  nextDeadline() {
    if (this.state !== State.READY || this.hello === null) return null;
    let due = this.pingSent !== null ? this.pingSent + PONG_TIMEOUT : this.lastHeard + this.heartbeat();
    for (const when of this.retryDue.values()) due = Math.min(due, when);
    return due;
  }

  tick(now) {
    if (this.state !== State.READY) return;
    if (this.pingSent !== null && now - this.pingSent > PONG_TIMEOUT) {
      this.end(`the server stopped answering for ${PONG_TIMEOUT} s`);
      return;
    }
    if (this.pingSent === null && now - this.lastHeard >= this.heartbeat()) {
      this.queue({ type: "ping", ref: "hb" });
      this.pingSent = now;
    }
    for (const [ref, due] of [...this.retryDue]) {
      if (due <= now) {
        this.retryDue.delete(ref);
        this.out.push(JSON.stringify(this.unacked.get(ref)));
      }
    }
  }

  connectionLost(reason) {
    if (this.state === State.DISCONNECTED || this.state === State.CLOSED) return;
    this.state = this.state === State.CLOSING ? State.CLOSED : State.DISCONNECTED;
    const pending = this.pending;
    this.pending = new Map();
    this.catchUpRef = null;
    this.retryDue.clear(); // the next login resends every unacknowledged send
    this.out = [];
    for (const [ref, asked] of pending) {
      const error = { type: "error", code: "shutting_down", message: reason, ref };
      this.events.push({ kind: "reply", ref, asked, event: error });
    }
  }

  // --- the caller's calls -------------------------------------------------------------

  get isReady() {
    return this.state === State.READY;
  }

  // Whether a new connection could log in: a password not used yet, or a token.
  get canLogIn() {
    return this.password !== null || this.token !== null || this.device;
  }

  get holdsPassword() {
    return this.password !== null;
  }

  request(message) {
    const ref = `c-${++this.refs}`;
    this.pending.set(ref, message);
    this.queue({ ...message, ref });
    return ref;
  }

  submit(body, { room = null, to = null }, files = []) { // files: ids uploaded (docs/protocol.md)
    const ref = `${this.sendPrefix}-${++this.sendRefs}`;
    const send = { type: "send", body, ref, ...(room !== null ? { room } : { to }), ...(files.length > 0 ? { files } : {}) };
    this.unacked.set(ref, send);
    if (this.state === State.READY) this.out.push(JSON.stringify(send));
    return send;
  }

  close() {
    if (this.state === State.DISCONNECTED || this.state === State.CLOSED) {
      this.state = State.CLOSED;
      return;
    }
    this.queue({ type: "bye", ref: "bye" });
    this.state = State.CLOSING;
  }

  // --- inside -------------------------------------------------------------------------

  heartbeat() {
    return this.hello.heartbeat;
  }

  queue(message) {
    this.out.push(JSON.stringify(message));
  }

  end(reason) {
    this.connectionLost(reason); // answers the requests in flight...
    this.events.push({ kind: "ended", reason }); // ...so that this comes last
  }

  dispatch(event, now) {
    const type = event.type;
    if (type === "message") this.receiveMessage(event);
    else if (type === "ping") this.queue({ type: "pong", ref: event.ref });
    else if (type === "bye") {
      this.end(event.reason === "shutting_down" ? "the server is restarting" : event.reason || "closed");
    } else if (this.state === State.AWAITING_HELLO) this.onHello(event);
    else if (this.state === State.AUTHENTICATING) this.onLogin(event);
    else if (JOURNAL.has(type)) this.receiveJournal(event);
    else if (type === "ack") this.acknowledge(event);
    else if (type === "error") this.refused(event, now);
    else if (type === "synced" && event.ref === this.catchUpRef) {
      this.lastId = Math.max(this.lastId, event.last_id);
      this.catchUpRef = null;
      if (event.more) this.catchUp(event.last_id);
      else this.events.push({ kind: "caught_up" });
    } else if (!this.answer(event) && type !== "pong") {
      this.followRooms(event);
      this.events.push({ kind: "pushed", event }); // presence, joins, and what later versions add
    }
  }

  onHello(event) {
    if (event.type !== "hello") {
      this.end("the server did not greet like a securechat server");
      return;
    }
    this.hello = event;
    if (event.protocol !== PROTOCOL_VERSION) {
      const message = `the server speaks protocol version ${event.protocol}, this page speaks ${PROTOCOL_VERSION}`;
      this.events.push({ kind: "refused", error: { code: "unsupported_protocol", message }, withToken: false });
      this.end(message);
      return;
    }
    if (!this.canLogIn) {
      const message = "the server gave no resume token at login, so this page cannot log in again by itself";
      this.events.push({ kind: "refused", error: { code: "auth_required", message }, withToken: false });
      this.end(message);
      return;
    }
    this.state = State.AUTHENTICATING;
    const auth = { type: "auth", user: this.user };
    if (this.token !== null) auth.token = this.token;
    else if (this.device) auth.device = true;
    else {
      auth.password = this.password;
      if (this.remember) auth.remember = true;
    }
    this.queue(auth);
  }

  onLogin(event) {
    if (event.type === "error") {
      this.events.push({ kind: "refused", error: event, withToken: this.token !== null, ...(this.device ? { withDevice: true } : {}) });
      this.end(`login refused: ${event.message}`);
      return;
    }
    if (event.type !== "welcome") {
      this.end(`the server answered the login with ${event.type}`);
      return;
    }
    const resumed = this.logins > 0;
    this.logins += 1;
    // Logged in: the password goes, whatever came with the welcome (a token, or none).
    this.password = null;
    this.remember = false;
    if (typeof event.token === "string") {
      this.token = event.token;
      this.device = false; // the token reconnects; the cookie waits for the next load
    }
    this.user = event.user;
    this.rooms = [...event.rooms];
    if (!resumed) this.lastId = event.last_id;
    this.state = State.READY;
    this.events.push({ kind: "logged_in", welcome: event, resumed });
    if (resumed) this.catchUp(this.lastId);
    for (const send of this.unacked.values()) this.out.push(JSON.stringify(send)); // resends, or early sends
  }

  // Removed from a room (kicked, banned, the room deleted: left), or joined or left it in
  // another session of this user (member_joined / member_left naming us).
  followRooms(event) {
    const mine = event.user === this.user;
    if (event.type === "left" || (event.type === "member_left" && mine)) {
      this.rooms = this.rooms.filter((room) => room !== event.room);
    } else if (event.type === "member_joined" && mine && !this.rooms.includes(event.room)) {
      this.rooms.push(event.room);
    }
  }

  catchUp(since) {
    this.catchUpRef = `catch-up-${++this.refs}`;
    this.queue({ type: "sync", since, ref: this.catchUpRef });
  }

  receiveMessage(message) {
    this.lastId = Math.max(this.lastId, message.id);
    if (this.markSeen(message.id)) this.events.push({ kind: "message", message });
  }

  receiveJournal(event) {
    this.lastId = Math.max(this.lastId, event.id);
    if (!this.markSeen(event.id)) return;
    if (event.type === "room_event" && event.action === "delete") {
      this.rooms = this.rooms.filter((room) => room !== event.room);
    }
    this.events.push({ kind: "pushed", event });
  }

  markSeen(id) {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > SEEN_IDS) this.seen.delete(this.seenOrder.shift());
    return true;
  }

  acknowledge(ack) {
    const send = this.unacked.get(ack.ref);
    if (send === undefined) {
      // An edit's or a deletion's ack: its id is the change's, which a catch-up would repeat
      // (marked seen, but the last id stays: an earlier id may still be on its way).
      if (this.answer(ack) && Number.isInteger(ack.id)) this.markSeen(ack.id);
      return; // else a duplicate ack after a resend, or a stray one: dropped
    }
    this.forget(ack.ref);
    const message = { type: "message", id: ack.id, from: this.user, body: send.body, ts: ack.ts };
    if (send.room !== undefined) message.room = send.room;
    else message.to = send.to;
    this.markSeen(ack.id);
    this.events.push({ kind: "delivered", ref: ack.ref, message });
  }

  refused(error, now) {
    const send = this.unacked.get(error.ref);
    if (send === undefined) {
      if (!this.answer(error)) this.events.push({ kind: "pushed", event: error });
      return;
    }
    if (error.code === "rate_limited") {
      this.retryDue.set(send.ref, now + (error.retry_after || 1));
      return;
    }
    if (error.code === "server_error") {
      // Not stored (a failed commit, an overload): again later under the same ref.
      const delay = this.retryDelay.get(send.ref) || RETRY_FIRST;
      this.retryDue.set(send.ref, now + delay);
      this.retryDelay.set(send.ref, Math.min(delay * 2, RETRY_CAP));
      return;
    }
    this.forget(send.ref);
    this.events.push({ kind: "send_failed", ref: send.ref, send, code: error.code, reason: error.message });
  }

  forget(ref) {
    this.unacked.delete(ref);
    this.retryDue.delete(ref);
    this.retryDelay.delete(ref);
  }

  answer(event) {
    const ref = event.ref;
    if (typeof ref !== "string" || !this.pending.has(ref)) return false;
    const asked = this.pending.get(ref);
    this.pending.delete(ref);
    if (event.type === "joined" && !this.rooms.includes(event.room)) this.rooms.push(event.room);
    if (event.type === "left") this.rooms = this.rooms.filter((room) => room !== event.room);
    this.events.push({ kind: "reply", ref, asked, event });
    return true;
  }
}

// Reconnect back-off with full jitter: a random wait up to 0.5 s, doubling to 30 s.
export function reconnectDelay(attempt, random = Math.random) {
  return random() * Math.min(30, 0.5 * 2 ** attempt);
}
