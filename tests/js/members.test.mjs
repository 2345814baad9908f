// A room's members and roles, and the pending invitations, from the server (members.js).
// Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.MEMBERS_MODULE || new URL("../../securechat/web/members.js", import.meta.url).href;
const M = await import(module);
const S = await import(new URL("./state.js", module).href);

const event = (id, action, actor, user) => ({ type: "room_event", id, room: "ops", action, actor, user, ts: "t" });

test("the server's member list gives every role, with no event loaded", () => {
  const state = S.createState("carol");
  S.applyJoined(state, { type: "joined", room: "ops", members: ["alice", "carol"], role: "member" });
  state.online = new Set(["alice"]);
  M.applyMembers(state, "ops", [
    { name: "alice", role: "owner", online: true },
    { name: "bob", role: "moderator", online: false },
    { name: "carol", role: "member", online: true },
    { name: "dave", role: "member", online: false, muted: true },
  ]);
  assert.deepEqual(M.membersOf(state, "ops"), [
    { name: "alice", role: "owner", online: true },
    { name: "bob", role: "moderator", online: false },
    { name: "carol", role: "member", online: false },
    { name: "dave", role: "member", online: false, muted: true },
  ]);
});

test("room events keep a listed roster up to date", () => {
  const state = S.createState("carol");
  S.applyJoined(state, { type: "joined", room: "ops", members: ["alice", "bob", "carol"], role: "member" });
  M.applyMembers(state, "ops", [
    { name: "alice", role: "owner", online: true },
    { name: "bob", role: "member", online: true },
    { name: "carol", role: "member", online: true },
  ]);
  S.applyRoomEvent(state, event(10, "op", "alice", "bob"), "");
  S.applyRoomEvent(state, event(11, "mute", "bob", "carol"), "");
  S.memberChanged(state, "ops", "erin", true);
  S.applyRoomEvent(state, event(12, "join", "erin", "erin"), "");
  const roles = () => Object.fromEntries(M.membersOf(state, "ops").map((m) => [m.name, m.role]));
  assert.deepEqual(roles(), { alice: "owner", bob: "moderator", carol: "member", erin: "member" });
  S.applyRoomEvent(state, event(13, "transfer", "console", "bob"), ""); // an admin hands it over
  assert.deepEqual(roles(), { bob: "owner", alice: "moderator", carol: "member", erin: "member" });
  S.applyRoomEvent(state, event(14, "kick", "bob", "erin"), "");
  assert.equal(state.rosters.get("ops").has("erin"), false);
  S.applyRoomEvent(state, event(15, "deop", "bob", "alice"), "");
  assert.equal(state.rosters.get("ops").get("alice").role, "member");
});

test("pending invitations from the server replace the list, rooms already joined left out", () => {
  const state = S.createState("bob");
  state.rooms.add("general");
  state.invites.set("gone", { room: "gone", actor: "alice" }); // withdrawn meanwhile
  M.applyInvitations(state, [
    { room: "general", by: "alice", ts: "t" },
    { room: "ops", by: "alice", ts: "t", private: true, topic: "on call" },
  ]);
  assert.deepEqual([...state.invites.keys()], ["ops"]);
  assert.deepEqual(state.invites.get("ops"), { room: "ops", actor: "alice", ts: "t", topic: "on call", private: true });
});
