// The browser's ChatSession (securechat/web/session.js) without a browser or a socket:
// the behaviours it shares with securechat/protocol/client.py. Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

// SESSION_MODULE: a copy named .mjs, for Node versions that do not detect module syntax.
const module = process.env.SESSION_MODULE || new URL("../../securechat/web/session.js", import.meta.url).href;
const { ChatSession, PONG_TIMEOUT, State, reconnectDelay } = await import(module);

const HELLO = { type: "hello", protocol: 1, server: "securechat test", max_frame: 65536, heartbeat: 30 };

function sent(session) {
  return session.takeOutgoing().map((text) => JSON.parse(text));
}

function kinds(session) {
  return session.takeEvents().map((event) => event.kind);
}

function receive(session, event, now = 0) {
  session.receive(JSON.stringify(event), now);
}

function loggedIn({ lastId = 10 } = {}) {
  const session = new ChatSession({ user: "Alice", password: "pw", sendPrefix: "w1" });
  session.connectionMade(0);
  receive(session, HELLO);
  sent(session);
  receive(session, { type: "welcome", user: "alice", rooms: ["general"], last_id: lastId, token: "tok" });
  session.takeEvents();
  return session;
}

test("logs in with the password, then keeps only the token", () => {
  const session = new ChatSession({ user: "Alice", password: "pw" });
  session.connectionMade(0);
  receive(session, HELLO);
  assert.deepEqual(sent(session), [{ type: "auth", user: "Alice", password: "pw" }]);
  receive(session, { type: "welcome", user: "alice", rooms: ["general"], last_id: 7, token: "tok" });
  assert.deepEqual(kinds(session), ["logged_in"]);
  assert.equal(session.state, State.READY);
  assert.equal(session.user, "alice");
  assert.equal(session.token, "tok");
  assert.equal(session.password, null);
  assert.equal(session.lastId, 7);
});

test("a refused login ends the connection and says whether the token was refused", () => {
  const session = new ChatSession({ user: "alice", token: "old" });
  session.connectionMade(0);
  receive(session, HELLO);
  assert.deepEqual(sent(session), [{ type: "auth", user: "alice", token: "old" }]);
  receive(session, { type: "error", code: "auth_failed", message: "no" });
  const [refused, ended] = session.takeEvents();
  assert.equal(refused.kind, "refused");
  assert.equal(refused.withToken, true);
  assert.equal(ended.kind, "ended");
  assert.equal(session.state, State.DISCONNECTED);
});

test("after a reconnect: token login, catch-up from the last id, page by page, then resends", () => {
  const session = loggedIn({ lastId: 10 });
  const first = session.submit("one", { room: "general" });
  const second = session.submit("two", { to: "bob" });
  assert.deepEqual(sent(session).map((m) => m.ref), [first.ref, second.ref]);
  receive(session, { type: "ack", id: 11, ts: "t", ref: first.ref });
  const historyRef = session.request({ type: "history", room: "general" });
  session.takeEvents();
  session.connectionLost("gone");
  const [failed] = session.takeEvents();
  assert.equal(failed.ref, historyRef);
  assert.equal(failed.event.code, "shutting_down");

  session.connectionMade(1);
  receive(session, HELLO, 1);
  assert.deepEqual(sent(session), [{ type: "auth", user: "alice", token: "tok" }]);
  receive(session, { type: "welcome", user: "alice", rooms: ["general"], last_id: 99, token: "tok" }, 1);
  const out = sent(session);
  assert.equal(out[0].type, "sync");
  assert.equal(out[0].since, 10); // the last id seen (not its own ack's: see the vectors), not the welcome's
  assert.deepEqual(out.slice(1), [{ type: "send", body: "two", ref: second.ref, to: "bob" }]);
  assert.deepEqual(kinds(session), ["logged_in"]);

  receive(session, { type: "synced", last_id: 50, more: true, ref: out[0].ref }, 1);
  const [next] = sent(session);
  assert.equal(next.type, "sync");
  assert.equal(next.since, 50);
  receive(session, { type: "synced", last_id: 60, more: false, ref: next.ref }, 1);
  assert.deepEqual(kinds(session), ["caught_up"]);
  assert.equal(session.lastId, 60);
});

test("a message id is shown once, whether it comes live, from a catch-up or as an ack", () => {
  const session = loggedIn();
  const message = { type: "message", id: 12, room: "general", from: "bob", body: "hi", ts: "t" };
  receive(session, message);
  receive(session, message);
  assert.deepEqual(kinds(session), ["message"]);
  const send = session.submit("mine", { room: "general" });
  receive(session, { type: "ack", id: 13, ts: "t", ref: send.ref });
  assert.deepEqual(kinds(session), ["delivered"]);
  receive(session, { ...message, id: 13, from: "alice", body: "mine" }); // from a resend's catch-up
  assert.deepEqual(kinds(session), []);
});

test("edits, deletions and room events move the last id and are shown once", () => {
  const session = loggedIn();
  const edited = { type: "edited", id: 14, target: 12, room: "general", from: "bob", body: "hi!", ts: "t" };
  const event = { type: "room_event", id: 15, room: "general", action: "topic", actor: "bob", topic: "x", ts: "t" };
  receive(session, edited);
  receive(session, event);
  receive(session, edited); // again, from a catch-up after a drop
  receive(session, event);
  const events = session.takeEvents();
  assert.deepEqual(events.map((e) => [e.kind, e.event.type]), [["pushed", "edited"], ["pushed", "room_event"]]);
  assert.equal(session.lastId, 15);
  const ref = session.request({ type: "delete", id: 12 });
  sent(session);
  receive(session, { type: "ack", id: 16, ts: "t", ref });
  assert.deepEqual(session.takeEvents().map((e) => [e.kind, e.asked.type]), [["reply", "delete"]]);
  receive(session, { type: "deleted", id: 16, target: 12, room: "general", by: "alice", ts: "t" });
  assert.deepEqual(kinds(session), []); // our own deletion, already known from its ack
  assert.equal(session.lastId, 16);
});

test("a send refused for a while is retried under its ref; one refused for good fails", () => {
  const session = loggedIn();
  const send = session.submit("hello", { room: "general" });
  sent(session);
  receive(session, { type: "error", code: "rate_limited", message: "slow", retry_after: 2, ref: send.ref }, 100);
  assert.deepEqual(kinds(session), []);
  session.tick(101);
  assert.deepEqual(sent(session), []);
  session.tick(102);
  assert.deepEqual(sent(session).map((m) => m.ref), [send.ref]);
  receive(session, { type: "error", code: "not_member", message: "no", ref: send.ref }, 102);
  const [failed] = session.takeEvents();
  assert.equal(failed.kind, "send_failed");
  assert.equal(failed.code, "not_member");
  assert.equal(session.unacked.size, 0);
});

test("pings after a silent heartbeat, answers pings, and ends a connection that stays silent", () => {
  const session = loggedIn();
  receive(session, { type: "ping", ref: "s" }, 1);
  assert.deepEqual(sent(session), [{ type: "pong", ref: "s" }]);
  assert.equal(session.nextDeadline(), 31);
  session.tick(31);
  assert.deepEqual(sent(session), [{ type: "ping", ref: "hb" }]);
  session.tick(31 + PONG_TIMEOUT + 1);
  assert.deepEqual(kinds(session), ["ended"]);
  assert.equal(session.state, State.DISCONNECTED);
});

test("a server bye or a broken message ends the connection", () => {
  const session = loggedIn();
  receive(session, { type: "bye", reason: "shutting_down" });
  assert.deepEqual(session.takeEvents(), [{ kind: "ended", reason: "the server is restarting" }]);
  const other = loggedIn();
  other.receive("{not json", 0);
  assert.deepEqual(kinds(other), ["ended"]);
});

test("reconnect delays: full jitter from 0.5 s, doubling, capped at 30 s", () => {
  assert.equal(reconnectDelay(0, () => 1), 0.5);
  assert.equal(reconnectDelay(3, () => 1), 4);
  assert.equal(reconnectDelay(20, () => 1), 30);
  assert.equal(reconnectDelay(5, () => 0), 0);
});
