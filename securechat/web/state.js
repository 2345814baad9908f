// What the page knows, and the pure functions that change it: no DOM, no socket, no clock.
//
// The event table (events.js) calls these with what the session reports and gives the views
// what changed (a conversation, a message id), so that a view updates one item, not a list.
// Tested under Node (tests/js/state.test.mjs).

import { conversationKey, mentions, unreadKey } from "./chat.js";
import { rosterEvent } from "./members.js";

export const DEFAULT_ROOM = "general";
export const MODERATORS = new Set(["owner", "moderator"]);

// Where `id` goes in the ascending `ids`: the index of the first id above it.
export function insertionIndex(ids, id) {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (ids[mid] < id) low = mid + 1;
    else high = mid;
  }
  return low;
}

export class Conversation {
  constructor(key) {
    this.key = key;
    [this.kind, this.name] = key.split(/:(.*)/s);
    this.messages = new Map(); // id -> message, or a room event (type "room_event", with text)
    this.ids = []; // the ids of `messages`, ascending: O(1) newest, O(log n) insertion point
    this.pending = new Map(); // ref -> { send, status: "sending" | "failed", reason, code }
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
    this.lastId = 0; // the newest message's id and time (`conversations`, then live)
    this.lastTs = null;
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
    return this.ids.length > 0 ? this.ids[0] : null;
  }

  newestId() {
    return this.ids.length > 0 ? this.ids[this.ids.length - 1] : null;
  }

  // Adds or replaces one item; true when it is new.
  put(item) {
    const fresh = !this.messages.has(item.id);
    this.messages.set(item.id, item);
    if (fresh) {
      const newest = this.newestId();
      if (newest === null || item.id > newest) this.ids.push(item.id);
      else this.ids.splice(insertionIndex(this.ids, item.id), 0, item.id);
    }
    return fresh;
  }

  // The item before `id`, or null.
  before(id) {
    const at = insertionIndex(this.ids, id);
    return at > 0 ? this.messages.get(this.ids[at - 1]) : null;
  }

  // The item after `id`, or null.
  after(id) {
    const at = insertionIndex(this.ids, id + 1);
    return at < this.ids.length ? this.messages.get(this.ids[at]) : null;
  }

  // The newest message of `user` that can still be edited: what ArrowUp edits.
  lastOwn(user) {
    for (let i = this.ids.length - 1; i >= 0; i -= 1) {
      const message = this.messages.get(this.ids[i]);
      if (message.type !== "room_event" && message.from === user && !message.deleted) return message;
    }
    return null;
  }

  clearUnread() {
    this.unread = 0;
    this.mentions = 0;
  }
}

export function createState(me) {
  return {
    me,
    conversations: new Map(),
    rooms: new Set(),
    dms: new Set(),
    online: new Set(),
    reachable: true, // false while the server cannot be reached (the Online list says so)
    current: null,
    roomInfo: new Map(), // room -> { role, topic, private, muted, members } from `joined` and events
    people: new Map(), // user -> { online, lastSeen } from `people`, presence and `who`
    invites: new Map(), // room -> the `room_event` inviting this user to a room they are not in
    rosters: new Map(), // room -> Map(user -> { role, muted }) from `members`, then events
    notices: new Map(), // room -> why we were removed, told when `left` comes
  };
}

export function conversation(state, key) {
  let found = state.conversations.get(key);
  if (found === undefined) {
    found = new Conversation(key);
    state.conversations.set(key, found);
  }
  return found;
}

// A DM partner or a room this user is in: listed in the sidebar. True when newly listed.
export function listConversation(state, key) {
  const [kind, name] = key.split(/:(.*)/s);
  const set = kind === "room" ? state.rooms : state.dms;
  if (set.has(name) || (kind === "dm" && name === state.me)) return false;
  set.add(name);
  return true;
}

// A message pushed or caught up. `seen`: the user is looking at its conversation now.
export function receiveMessage(state, message, { seen }) {
  const key = conversationKey(message, state.me);
  const where = conversation(state, key);
  const listed = listConversation(state, key); // a room joined elsewhere, a new DM partner
  where.put(message);
  noteActivity(where, message);
  let counted = false;
  if (message.from !== state.me && message.id > where.lastRead && !message.deleted && !seen) {
    if (key === state.current && where.unread === 0) where.divider = where.lastRead;
    where.unread += 1;
    if (mentions(message.body, state.me, true)) where.mentions += 1; // it came live
    counted = true;
  }
  return { conversation: where, listed, counted };
}

// Our send was stored: the pending item becomes the message.
export function deliver(state, ref, message) {
  const where = conversation(state, conversationKey(message, state.me));
  where.pending.delete(ref);
  where.put(message);
  noteActivity(where, message);
  return where;
}

export function failSend(state, { ref, send, code, reason }) {
  const where = conversation(state, conversationKey({ ...send, from: state.me }, state.me));
  where.pending.set(ref, { send, status: "failed", code, reason });
  return where;
}

// A conversation's newest message, for the sidebar's "last activity".
export function noteActivity(where, message) {
  if (message.id > where.lastId) {
    where.lastId = message.id;
    where.lastTs = message.ts;
  }
}

// The pages of a `conversations` reply, all in: every conversation is listed (a fresh
// device shows the rooms and DMs the last one did) with its last activity and counts.
export function applyConversations(state, entries) {
  for (const entry of entries) {
    const key = unreadKey(entry);
    listConversation(state, key);
    if (typeof entry.last_id === "number") noteActivity(conversation(state, key), { id: entry.last_id, ts: entry.last_ts });
  }
  applyUnread(state, entries);
}

// The pages of a `people` reply, all in: the directory, and who is online.
export function applyPeople(state, entries) {
  state.people = new Map(entries.map((p) => [p.name, { online: p.online === true, lastSeen: p.last_seen || null }]));
  state.online = new Set(entries.filter((p) => p.online === true).map((p) => p.name));
}

// A presence change at `now` (an ISO time): someone going offline was last seen now.
export function applyPresence(state, user, online, now) {
  if (online) state.online.add(user);
  else state.online.delete(user);
  const person = state.people.get(user);
  if (person !== undefined) {
    person.online = online;
    if (!online) person.lastSeen = now;
  }
}

// A `presence_batch` at `now`: everyone who came online and went offline since the last one.
export function applyPresenceBatch(state, batch, now) {
  for (const user of batch.online || []) applyPresence(state, user, true, now);
  for (const user of batch.offline || []) applyPresence(state, user, false, now);
}

// The people whose name holds `filter` (case-insensitive), this user left out, in name order.
export function findPeople(state, filter) {
  const needle = filter.trim().toLowerCase();
  return [...state.people.keys()].filter((name) => name !== state.me && name.includes(needle)).sort();
}

// A `joined` reply: the room is listed, its details and members known, its invitation used.
export function applyJoined(state, event) {
  const listed = !state.rooms.has(event.room);
  state.rooms.add(event.room);
  state.invites.delete(event.room);
  state.roomInfo.set(event.room, {
    role: event.role || "member",
    topic: event.topic || "",
    private: event.private === true,
    muted: event.muted === true,
    members: new Set(event.members || []),
  });
  return listed;
}

// Someone joined or left a room this user is in.
export function memberChanged(state, room, user, joined) {
  const info = state.roomInfo.get(room);
  if (info === undefined) return false;
  if (joined) info.members.add(user);
  else info.members.delete(user);
  return true;
}

// A room's members and roles, and the pending invitations, from the server: members.js.
export { applyInvitations, applyMembers, membersOf } from "./members.js";

// The pages of an `unread` reply, all in: the server's counts replace the page's.
export function applyUnread(state, entries) {
  const counts = new Map(entries.map((entry) => [unreadKey(entry), entry]));
  for (const [key, where] of state.conversations) if (!counts.has(key)) where.clearUnread();
  for (const [key, entry] of counts) {
    const where = conversation(state, key);
    listConversation(state, key);
    where.unread = entry.count;
    where.mentions = entry.mentions;
    where.lastRead = Math.max(where.lastRead, entry.last_read);
  }
}

// A read marker (ours acknowledged, or another session's). False: only the server knows
// what is left unread (the page asks it).
export function readMarker(state, event) {
  const key = typeof event.room === "string" ? `room:${event.room}` : `dm:${event.with}`;
  const where = conversation(state, key);
  where.lastRead = Math.max(where.lastRead, event.id);
  const newest = where.newestId();
  if (newest !== null && event.id >= newest && where.newerFrom === null) {
    where.clearUnread();
    return { conversation: where, settled: true };
  }
  return { conversation: where, settled: false };
}

// The id a `read` should be sent for now, or null: the newest item shown in a row (not past
// a gap that newer pages will fill), once, and never at or below the marker.
export function readTarget(where, upTo = null) {
  let newest = where.newerFrom !== null ? where.newerFrom : where.newestId();
  if (upTo !== null && newest !== null) newest = Math.min(newest, upTo);
  if (newest === null || newest <= where.lastRead || newest <= where.readAsked) return null;
  return newest;
}

// A room event: its line in the timeline, and what it changes about the room.
export function applyRoomEvent(state, event, text) {
  const me = state.me;
  if (event.action === "invite" && event.user === me && !state.rooms.has(event.room)) {
    state.invites.set(event.room, { ...event, text }); // shown as an invitation, with Join
    return null;
  }
  if (event.action === "delete" || (event.action === "ban" && event.user === me)) state.invites.delete(event.room);
  const info = state.roomInfo.get(event.room);
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
  if (event.action === "create" && event.actor === me) state.rooms.add(event.room); // another session
  if ((event.user === me && (event.action === "kick" || event.action === "ban")) || event.action === "delete") {
    state.notices.set(event.room, text);
  }
  rosterEvent(state, event);
  const where = conversation(state, `room:${event.room}`);
  where.put({ ...event, text });
  return where;
}

// Left, kicked, banned or deleted: the room goes. Returns why (for the notice), or null
// when the room was not listed.
export function removeRoom(state, room) {
  if (!state.rooms.has(room)) return null;
  state.rooms.delete(room);
  state.roomInfo.delete(room);
  state.rosters.delete(room);
  state.invites.delete(room);
  state.conversations.delete(`room:${room}`);
  const why = state.notices.get(room);
  state.notices.delete(room);
  return why ? `You are no longer in #${room}: ${why}.` : `You are no longer in #${room}.`;
}

export function findMessage(state, id) {
  for (const where of state.conversations.values()) {
    const message = where.messages.get(id);
    if (message !== undefined && message.type !== "room_event") return { conversation: where, message };
  }
  return null;
}

// An edit or a deletion, ours or pushed. Returns the conversation changed, or null when
// the message is not loaded here (history will show it as it is now).
export function changeMessage(state, id, change) {
  const found = findMessage(state, id);
  if (found === null) return null;
  const { conversation: where, message } = found;
  if (change.deleted && message.from !== state.me && message.id > where.lastRead && where.unread > 0 && !message.deleted) {
    where.unread -= 1; // as the server counts: deleted messages are not unread
    if (mentions(message.body, state.me, true) && where.mentions > 0) where.mentions -= 1;
  }
  where.messages.set(id, { ...message, ...change });
  return where;
}

export function canDeleteOthers(state, where) {
  if (where.kind !== "room") return false;
  const info = state.roomInfo.get(where.name);
  return info !== undefined && MODERATORS.has(info.role);
}

export function totalUnread(state) {
  let total = 0;
  for (const where of state.conversations.values()) total += where.unread;
  return total;
}

// The room to show after the current one went away.
export function fallbackRoom(state) {
  return state.rooms.has(DEFAULT_ROOM) ? DEFAULT_ROOM : [...state.rooms].sort()[0];
}
