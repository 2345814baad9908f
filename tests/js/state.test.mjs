// The page's state updates (securechat/web/state.js) without a browser: what a message,
// a delivery, a refusal, unread counts, read markers, room events and edits change.
// Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.STATE_MODULE || new URL("../../securechat/web/state.js", import.meta.url).href;
const S = await import(module);

function message(id, fields = {}) {
  return { type: "message", id, from: "bob", room: "general", body: `m${id}`, ts: "2026-12-07T10:00:00Z", ...fields };
}

test("a conversation keeps its ids ascending, whatever order items come in", () => {
  const where = new S.Conversation("room:general");
  for (const id of [5, 9, 1, 7, 3]) assert.equal(where.put(message(id)), true);
  assert.equal(where.put(message(7, { body: "edited" })), false);
  assert.deepEqual(where.ids, [1, 3, 5, 7, 9]);
  assert.equal(where.oldestId(), 1);
  assert.equal(where.newestId(), 9);
  assert.equal(where.before(7).id, 5);
  assert.equal(where.after(7).id, 9);
  assert.equal(where.after(9), null);
  assert.equal(where.messages.get(7).body, "edited");
  assert.equal(S.insertionIndex([1, 3, 5], 4), 2);
});

test("a message counts as unread unless seen, and mentions count apart", () => {
  const state = S.createState("alice");
  state.current = "room:general";
  const first = S.receiveMessage(state, message(1), { seen: true });
  assert.equal(first.listed, true);
  assert.equal(first.counted, false);
  assert.ok(state.rooms.has("general"));
  const second = S.receiveMessage(state, message(2, { body: "hi @alice" }), { seen: false });
  assert.equal(second.counted, true);
  assert.equal(second.conversation.unread, 1);
  assert.equal(second.conversation.mentions, 1);
  assert.equal(second.conversation.divider, 0); // what arrives while away is new
  const own = S.receiveMessage(state, message(3, { from: "alice" }), { seen: false });
  assert.equal(own.counted, false);
  const dm = S.receiveMessage(state, message(4, { room: undefined, to: "alice", from: "carol" }), { seen: false });
  assert.equal(dm.conversation.key, "dm:carol");
  assert.ok(state.dms.has("carol"));
  assert.equal(S.totalUnread(state), 2);
});

test("a delivery replaces the pending send; a refusal keeps it as failed", () => {
  const state = S.createState("alice");
  const where = S.conversation(state, "room:general");
  const send = { type: "send", ref: "w-1", room: "general", body: "hello" };
  where.pending.set("w-1", { send, status: "sending" });
  S.failSend(state, { ref: "w-1", send, code: "too_large", reason: "too long" });
  assert.equal(where.pending.get("w-1").status, "failed");
  assert.equal(where.pending.get("w-1").reason, "too long");
  assert.equal(where.pending.get("w-1").code, "too_large");
  S.deliver(state, "w-1", message(8, { from: "alice", body: "hello" }));
  assert.equal(where.pending.size, 0);
  assert.deepEqual(where.ids, [8]);
});

test("unread pages replace the counts; a read marker settles them when it covers the newest", () => {
  const state = S.createState("alice");
  S.receiveMessage(state, message(1, { room: "dev" }), { seen: false });
  S.applyUnread(state, [{ key: "u:carol", with: "carol", count: 2, mentions: 0, last_read: 4 }]);
  assert.equal(state.conversations.get("room:dev").unread, 0);
  const dm = state.conversations.get("dm:carol");
  assert.equal(dm.unread, 2);
  assert.equal(dm.lastRead, 4);
  assert.ok(state.dms.has("carol"));
  S.receiveMessage(state, message(6, { room: undefined, to: "alice", from: "carol" }), { seen: false });
  assert.equal(S.readMarker(state, { type: "read", with: "carol", id: 5 }).settled, false);
  assert.equal(S.readMarker(state, { type: "read", with: "carol", id: 6 }).settled, true);
  assert.equal(dm.unread, 0);
});

test("read goes up to the newest item shown in a row, once", () => {
  const where = new S.Conversation("room:general");
  assert.equal(S.readTarget(where), null);
  where.put(message(3));
  where.put(message(5));
  assert.equal(S.readTarget(where), 5);
  assert.equal(S.readTarget(where, 4), 4); // only what was seen
  where.readAsked = 5;
  assert.equal(S.readTarget(where), null);
  where.newerFrom = 4; // a gap after 4 that newer pages will fill
  where.readAsked = 0;
  assert.equal(S.readTarget(where), 4);
});

test("room events change the room's details and are kept as timeline lines", () => {
  const state = S.createState("alice");
  state.rooms.add("ops");
  state.roomInfo.set("ops", { role: "member", topic: "", private: false, muted: false });
  const event = (id, fields) => ({ type: "room_event", id, room: "ops", actor: "bob", ts: "t", ...fields });
  S.applyRoomEvent(state, event(1, { action: "topic", topic: "deploys" }), "topic changed");
  S.applyRoomEvent(state, event(2, { action: "op", user: "alice" }), "bob made you a moderator");
  S.applyRoomEvent(state, event(3, { action: "private" }), "private");
  const info = state.roomInfo.get("ops");
  assert.deepEqual(info, { role: "moderator", topic: "deploys", private: true, muted: false });
  assert.equal(S.canDeleteOthers(state, state.conversations.get("room:ops")), true);
  assert.equal(state.conversations.get("room:ops").messages.get(2).text, "bob made you a moderator");
  S.applyRoomEvent(state, event(4, { action: "kick", user: "alice" }), "bob kicked you");
  assert.equal(S.removeRoom(state, "ops"), "You are no longer in #ops: bob kicked you.");
  assert.equal(S.removeRoom(state, "ops"), null);
  assert.equal(state.conversations.has("room:ops"), false);
});

test("a deleted unread message is no longer unread; an edit changes the body", () => {
  const state = S.createState("alice");
  S.receiveMessage(state, message(1, { body: "@alice look" }), { seen: false });
  const where = S.changeMessage(state, 1, { body: "@alice see", edited: "t" });
  assert.equal(where.messages.get(1).body, "@alice see");
  assert.equal(where.unread, 1);
  S.changeMessage(state, 1, { body: "", deleted: true });
  assert.equal(where.unread, 0);
  assert.equal(where.mentions, 0);
  assert.equal(S.changeMessage(state, 99, { deleted: true }), null);
});

test("the event table has a handler for every kind of event the session reports", async () => {
  const { readFileSync } = await import("node:fs");
  const { SESSION_EVENTS, REPLIES, PUSHED } = await import(new URL("./events.js", module).href);
  const session = readFileSync(new URL("./session.js", module), "utf8");
  const kinds = new Set([...session.matchAll(/kind: "(\w+)"/g)].map((match) => match[1]));
  assert.ok(kinds.size >= 8, [...kinds].join(", "));
  for (const kind of kinds) assert.equal(typeof SESSION_EVENTS[kind], "function", kind);
  for (const asked of ["history", "join", "create", "leave", "who", "unread", "read", "edit", "delete", "search", "moderate", "conversations", "people", "rooms"]) {
    assert.equal(typeof REPLIES[asked], "function", asked);
  }
  for (const pushed of ["presence", "presence_batch", "member_joined", "member_left", "left", "room_event", "edited", "deleted", "read", "error"]) {
    assert.equal(typeof PUSHED[pushed], "function", pushed);
  }
});

test("conversations from the server list every room and DM, read or not, with last activity", () => {
  const state = S.createState("alice");
  S.applyConversations(state, [
    { key: "r:dev", room: "dev", count: 0, mentions: 0, last_read: 0 },
    { key: "r:general", room: "general", count: 2, mentions: 1, last_read: 40, last_id: 43, last_ts: "2026-12-07T09:12:03Z" },
    { key: "u:dave", with: "dave", count: 0, mentions: 0, last_read: 0, last_id: 39, last_ts: "2026-12-07T08:55:41Z" },
  ]);
  assert.deepEqual([...state.rooms].sort(), ["dev", "general"]);
  assert.deepEqual([...state.dms], ["dave"]);
  const general = state.conversations.get("room:general");
  assert.equal(general.unread, 2);
  assert.equal(general.mentions, 1);
  assert.equal(general.lastId, 43);
  assert.equal(state.conversations.get("room:dev").lastTs, null);
  S.receiveMessage(state, message(50, { from: "dave", room: undefined, to: "alice", ts: "2026-12-07T11:00:00Z" }), { seen: false });
  const dave = state.conversations.get("dm:dave");
  assert.deepEqual([dave.lastId, dave.lastTs, dave.unread], [50, "2026-12-07T11:00:00Z", 1]);
  S.noteActivity(dave, message(45)); // an older message (a history page) moves nothing
  assert.equal(dave.lastId, 50);
  S.deliver(state, "w-1", message(51, { from: "alice", room: undefined, to: "dave", ts: "2026-12-07T11:05:00Z" }));
  assert.deepEqual([dave.lastId, dave.lastTs], [51, "2026-12-07T11:05:00Z"]); // our own too
});

test("the people directory: everyone, online or last seen, searchable, this user left out", () => {
  const state = S.createState("alice");
  S.applyPeople(state, [
    { name: "alice", online: true },
    { name: "bob", online: false, last_seen: "2026-12-06T17:31:09Z" },
    { name: "carol", online: false },
    { name: "caroline", online: true },
  ]);
  assert.deepEqual([...state.online].sort(), ["alice", "caroline"]);
  assert.deepEqual(S.findPeople(state, ""), ["bob", "carol", "caroline"]);
  assert.deepEqual(S.findPeople(state, " CAR"), ["carol", "caroline"]);
  assert.equal(state.people.get("carol").lastSeen, null);
  S.applyPresence(state, "caroline", false, "2026-12-07T12:00:00Z");
  assert.deepEqual(state.people.get("caroline"), { online: false, lastSeen: "2026-12-07T12:00:00Z" });
  S.applyPresence(state, "bob", true, "2026-12-07T12:01:00Z");
  assert.equal(state.people.get("bob").online, true);
  assert.ok(state.online.has("bob"));
});

test("a presence batch moves everyone it names at once: the online list and the directory", () => {
  const state = S.createState("alice");
  S.applyPeople(state, [
    { name: "alice", online: true },
    { name: "bob", online: false },
    { name: "carol", online: true },
    { name: "dave", online: true },
  ]);
  S.applyPresenceBatch(state, { type: "presence_batch", online: ["bob", "erin"], offline: ["carol", "dave"] }, "2026-12-07T09:00:00Z");
  assert.deepEqual([...state.online].sort(), ["alice", "bob", "erin"]);
  assert.equal(state.people.get("bob").online, true);
  assert.deepEqual(state.people.get("carol"), { online: false, lastSeen: "2026-12-07T09:00:00Z" });
  assert.deepEqual(state.people.get("dave"), { online: false, lastSeen: "2026-12-07T09:00:00Z" });
  assert.equal(state.people.get("erin"), undefined); // not in the directory yet: online only
  S.applyPresenceBatch(state, { type: "presence_batch", online: [], offline: ["erin"] }, "2026-12-07T09:01:00Z");
  assert.deepEqual([...state.online].sort(), ["alice", "bob"]);
});

test("an invitation to a room this user is not in is kept apart, until joined", () => {
  const state = S.createState("carol");
  const invite = { type: "room_event", id: 7, room: "ops", action: "invite", actor: "alice", user: "carol", ts: "t" };
  assert.equal(S.applyRoomEvent(state, invite, "alice invited you"), null);
  assert.equal(state.invites.get("ops").actor, "alice");
  assert.equal(state.conversations.has("room:ops"), false);
  assert.equal(S.applyJoined(state, { type: "joined", room: "ops", members: ["alice", "carol"], role: "member", private: true }), true);
  assert.equal(state.invites.size, 0);
  assert.equal(state.roomInfo.get("ops").private, true);
  S.applyRoomEvent(state, { ...invite, room: "dev", id: 8 }, "alice invited you");
  S.applyRoomEvent(state, { ...invite, room: "dev", id: 9, action: "delete", user: undefined }, "alice deleted #dev");
  assert.equal(state.invites.has("dev"), false); // the room is gone
});

test("members with roles: the server's word for this user, the timeline's for the others", () => {
  const state = S.createState("carol");
  S.applyJoined(state, { type: "joined", room: "ops", members: ["alice", "bob", "carol", "dave"], online: ["alice"], role: "member" });
  state.online = new Set(["alice", "dave"]);
  const event = (id, action, actor, user) => ({ type: "room_event", id, room: "ops", action, actor, user, ts: "t" });
  for (const item of [event(1, "create", "alice", "alice"), event(3, "op", "alice", "bob"), event(2, "op", "alice", "dave"), event(4, "deop", "alice", "dave")]) {
    S.applyRoomEvent(state, item, "");
  }
  assert.deepEqual(S.membersOf(state, "ops"), [
    { name: "alice", role: "owner", online: true },
    { name: "bob", role: "moderator", online: false },
    { name: "carol", role: "member", online: false },
    { name: "dave", role: "member", online: true },
  ]);
  S.memberChanged(state, "ops", "erin", true);
  S.memberChanged(state, "ops", "bob", false);
  assert.deepEqual(S.membersOf(state, "ops").map((m) => m.name), ["alice", "carol", "dave", "erin"]);
  S.applyRoomEvent(state, event(5, "transfer", "alice", "carol"), "");
  assert.equal(S.membersOf(state, "ops")[0].name, "carol");
  assert.equal(state.roomInfo.get("ops").role, "owner");
});
