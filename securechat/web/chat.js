// The page's pure rules, apart from the views so that Node can test them (tests/js/):
// which conversation a message belongs to, what counts as a mention, how the composer's
// slash commands become requests (commands.js), and how a room event reads as a line of text.

import { normalizeName } from "./names.js";

// A conversation's key in the page: "room:NAME" or "dm:USER".
export function conversationKey(message, me) {
  if (message.room !== undefined && message.room !== null) return `room:${message.room}`;
  return `dm:${message.from === me ? message.to : message.from}`;
}

// The page's key for an `unread` entry (whose own keys are "r:NAME" and "u:USER").
export function unreadKey(entry) {
  return typeof entry.room === "string" ? `room:${entry.room}` : `dm:${entry.with}`;
}

// The mention rule of securechat/protocol/mentions.py, kept in step with it by the shared
// cases in tests/vectors/mentions.json: "@" not after a name character, then the run of
// name characters less trailing dots, which must be a valid name (names.js).
const MENTION = /(?<![A-Za-z0-9._-])@([A-Za-z0-9._-]+)/g;

// Every mention in `body`: [start, end) of the "@name", and the name in lowercase.
export function mentionsIn(body) {
  const found = [];
  if (!body.includes("@")) return found;
  for (const match of body.matchAll(MENTION)) {
    const run = match[1].replace(/\.+$/, "");
    const name = normalizeName(run);
    if (name !== null) found.push({ start: match.index, end: match.index + 1 + run.length, name });
  }
  return found;
}

// "room" (@room: every member) or "here" (@here: those online when sent) when `body` says
// one of them ("room" if both), else null; only owners and moderators may, so a body that
// holds one is taken at its word.
export const BROADCASTS = ["room", "here"];

export function broadcastOf(body) {
  const names = new Set(mentionsIn(body).map((found) => found.name));
  return BROADCASTS.find((name) => names.has(name)) || null;
}

// Whether `body` mentions `user` (by name, @room, or @here when `online`: it came live):
// the server counts the same mentions.
export function mentions(body, user, online = false) {
  const name = user.toLowerCase();
  const names = mentionsIn(body).map((found) => found.name);
  return names.includes(name) || names.includes("room") || (online && names.includes("here"));
}

// Where `body` mentions `user`: [start, end) of each "@name" (and @room, @here), for
// highlighting.
export function mentionSpans(body, user) {
  const name = user.toLowerCase();
  return mentionsIn(body).filter((found) => found.name === name || BROADCASTS.includes(found.name)).map((found) => [found.start, found.end]);
}

// The slash commands live in their own table (commands.js).
export { COMMANDS, parseCommand } from "./commands.js";

// A room event as the system line the conversation shows: "bob kicked carol".
export function roomEventText(event, me) {
  const actor = event.actor === me ? "you" : event.actor;
  let user = event.user === me ? "you" : event.user;
  if (event.user === event.actor) user = event.actor === me ? "yourself" : "themselves"; // not "you made you"
  const room = `#${event.room}`;
  const done = {
    invite: "invited",
    kick: "kicked",
    ban: "banned",
    unban: "unbanned",
    mute: "muted",
    unmute: "unmuted",
  }[event.action];
  let text;
  if (done !== undefined) text = `${actor} ${done} ${user}`;
  else if (event.action === "op") text = `${actor} made ${user} a moderator`;
  else if (event.action === "deop") text = `${actor} made ${user} a member again`;
  else if (event.action === "transfer") text = `${actor} handed ${room} over to ${user}`;
  else if (event.action === "private" || event.action === "public") text = `${room} is now ${event.action} (by ${actor})`;
  else if (event.action === "topic") {
    text = event.topic ? `topic changed to “${event.topic}” by ${actor}` : `topic cleared by ${actor}`;
  } else if (event.action === "create") text = `${actor} created ${room}`;
  else if (event.action === "join" || event.action === "leave") text = joinedText([event.user || event.actor], event, me);
  else if (event.action === "delete") text = `${actor} deleted ${room}`;
  else text = `${actor}: ${event.action} ${event.user || ""}`.trim();
  return text.startsWith("you ") ? `Y${text.slice(1)}` : text; // user names keep their case
}

export const NAMES_SHOWN = 3; // a run of joins names this many people, then "and N others"

// "bob", "bob and carol", "bob, carol and dave", "bob, carol, dave and 47 others".
export function namesText(names, me) {
  const shown = names.map((name) => (name === me ? "you" : name));
  if (shown.length <= 1) return shown.join("");
  if (shown.length <= NAMES_SHOWN) return `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)}`;
  const others = shown.length - NAMES_SHOWN;
  return `${shown.slice(0, NAMES_SHOWN).join(", ")} and ${others} other${others === 1 ? "" : "s"}`;
}

function joinedText(names, event, me) {
  const text = `${namesText(names, me)} ${event.action === "join" ? "joined" : "left"} #${event.room}`;
  return text.startsWith("you ") || text.startsWith("you,") ? `Y${text.slice(1)}` : text;
}

// A run of like room events (timeline.js runKey) as one line: "bob, carol and 48 others
// joined #dev", "directory invited bob, carol and 48 others". `events` oldest first.
export function roomRunText(events, me) {
  const last = events.at(-1);
  if (events.length === 1) return roomEventText(last, me);
  const names = [...new Set(events.map((event) => event.user || event.actor))];
  if (last.action === "join" || last.action === "leave") return joinedText(names, last, me);
  const text = roomEventText({ ...last, user: "\u0000" }, me);
  return text.replace("\u0000", namesText(names, me));
}
