// A room's members with their roles, and this user's pending invitations, as the server
// lists them (`members`, `invitations`: docs/protocol.md) and as room events change them
// since: pure updates of the page's state (state.js), tested under Node
// (tests/js/members.test.mjs). A server from before these requests leaves `rosters`
// empty: the roles are then read from the loaded timeline's events, as before.

const ROLE_ORDER = { owner: 0, moderator: 1, member: 2 };

// A `members` reply's pages, all in: the server's roles, mutes and member set for `room`.
export function applyMembers(state, room, members) {
  state.rosters.set(room, new Map(members.map((m) => [m.name, { role: m.role, muted: m.muted === true }])));
  const info = state.roomInfo.get(room);
  if (info !== undefined) info.members = new Set(members.map((m) => m.name));
}

// An `invitations` reply's pages, all in: the pending invitations, shaped as the live
// `room_event` invite that state.js keeps (`actor`: who invited).
export function applyInvitations(state, invitations) {
  const pending = invitations.filter((item) => !state.rooms.has(item.room));
  state.invites = new Map(pending.map((item) => [item.room, { room: item.room, actor: item.by, ts: item.ts, topic: item.topic || "", private: item.private === true }]));
}

// A room event's change to a listed roster: who is in it, with which role, muted or not.
export function rosterEvent(state, event) {
  const roster = state.rosters.get(event.room);
  if (roster === undefined) return;
  const entry = (name) => {
    if (!roster.has(name)) roster.set(name, { role: "member", muted: false });
    return roster.get(name);
  };
  const action = event.action;
  if (action === "join" || action === "create") entry(event.user || event.actor);
  else if (action === "leave" || action === "kick" || action === "ban") roster.delete(event.user);
  else if (action === "op" || action === "deop") entry(event.user).role = action === "op" ? "moderator" : "member";
  else if (action === "mute" || action === "unmute") entry(event.user).muted = action === "mute";
  else if (action === "transfer") {
    for (const member of roster.values()) if (member.role === "owner") member.role = "moderator"; // stays on
    entry(event.user).role = "owner";
  }
  if (action === "create" && event.user) entry(event.user).role = "owner";
}

// Roles as the loaded timeline's events (create, op, deop, transfer) tell, in id order:
// what a server without `members` leaves the page.
function timelineRoles(state, room) {
  const roles = new Map();
  const where = state.conversations.get(`room:${room}`);
  for (const id of where ? where.ids : []) {
    const item = where.messages.get(id);
    if (item.type !== "room_event") continue;
    if (item.action === "create") roles.set(item.actor, "owner");
    else if (item.action === "op") roles.set(item.user, "moderator");
    else if (item.action === "deop") roles.set(item.user, "member");
    else if (item.action === "transfer") {
      roles.set(item.actor, "moderator");
      roles.set(item.user, "owner");
    }
  }
  return roles;
}

// The room's members with their roles, owner first: this user's role as the server said
// (`joined`, then events), the others' from the server's list (or the timeline), "member"
// where nothing says otherwise; `muted` only when true.
export function membersOf(state, room) {
  const info = state.roomInfo.get(room);
  if (info === undefined) return [];
  const roster = state.rosters.get(room);
  const roles = roster === undefined ? timelineRoles(state, room) : new Map([...roster].map(([name, m]) => [name, m.role]));
  roles.set(state.me, info.role);
  return [...info.members]
    .map((name) => {
      const member = { name, role: roles.get(name) || "member", online: state.online.has(name) };
      const muted = name === state.me ? info.muted : roster !== undefined && roster.get(name)?.muted === true;
      return muted ? { ...member, muted: true } : member;
    })
    .sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.name.localeCompare(b.name));
}
