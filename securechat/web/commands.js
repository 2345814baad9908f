// The composer's slash commands: one small entry per command, as the event table has one
// handler per event. Each entry says its arguments and one line of help (those the terminal
// has too must read as its /help does: tests/vectors/commands.json checks both tables) and
// builds, from the words typed, a protocol request or a page action. parseCommand() is the
// only way in.

import { NAME_RULE, typedName } from "./names.js";

// A name typed for `what` ("room", "user"), or an error saying the rule.
function named(raw, sigil, what) {
  const name = typedName(raw, sigil);
  return name === null ? { error: `not a valid ${what} name: ${raw.trim()} (${NAME_RULE})` } : { name };
}

// A moderation of the current room on one user: /kick USER and so on.
const onAUser = (action, help) => ({
  args: " USER",
  help,
  inRoom: true,
  build: ({ words, room }) => {
    if (words.length !== 1) return null;
    const user = named(words[0], "@", "user");
    return user.error !== undefined ? user : { request: { type: "moderate", room, action, user: user.name } };
  },
});

// A moderation of the current room with no argument: /private, /public.
const onTheRoom = (action, help) => ({
  args: "",
  help,
  inRoom: true,
  build: ({ words, room }) => (words.length === 0 ? { request: { type: "moderate", room, action } } : null),
});

// name -> { args (the usage line), help, inRoom (needs a current room), build (null: wrong
// usage; else { request }, { action } or { error }) }
export const COMMAND_TABLE = {
  join: {
    args: " ROOM",
    help: "join a room and make it current (/create ROOM makes a new one)",
    inRoom: false,
    build: ({ words }) => {
      if (words.length !== 1) return null;
      const room = named(words[0], "#", "room");
      return room.error !== undefined ? room : { action: { kind: "join", room: room.name } };
    },
  },
  leave: {
    args: " [ROOM]",
    help: "leave a room (default: the current one)",
    inRoom: false,
    build: ({ words, room }) => {
      if (words.length > 1) return null;
      if (words.length === 0) {
        return room === null ? { error: "/leave works in a room, or name one: /leave ROOM" } : { request: { type: "leave", room } };
      }
      const which = named(words[0], "#", "room");
      return which.error !== undefined ? which : { request: { type: "leave", room: which.name } };
    },
  },
  msg: {
    args: " USER TEXT",
    help: "send a direct message",
    inRoom: false,
    build: ({ words, rest }) => {
      if (words.length < 2) return null;
      const user = named(words[0], "@", "user");
      if (user.error !== undefined) return user;
      return { action: { kind: "msg", user: user.name, body: rest.slice(words[0].length).trim() } };
    },
  },
  query: {
    args: " USER",
    help: "make the direct conversation with USER current",
    inRoom: false,
    build: ({ words }) => {
      if (words.length !== 1) return null;
      const user = named(words[0], "@", "user");
      return user.error !== undefined ? user : { action: { kind: "query", user: user.name } };
    },
  },
  rooms: {
    args: "",
    help: "list your conversations, then the other rooms on the server",
    inRoom: false,
    build: ({ words }) => (words.length === 0 ? { action: { kind: "rooms" } } : null),
  },
  who: {
    args: "",
    help: "list who is online",
    inRoom: false,
    build: ({ words }) => (words.length === 0 ? { action: { kind: "who" } } : null),
  },
  create: {
    args: " ROOM [private]",
    help: "create a room you own and enter it (private: invitation only)",
    inRoom: false,
    build: ({ words }) => {
      const flag = words[1] === undefined ? null : words[1].toLowerCase();
      if (words.length < 1 || words.length > 2 || (flag !== null && flag !== "private")) return null;
      const room = named(words[0], "#", "room");
      return room.error !== undefined ? room : { request: { type: "create", room: room.name, private: flag === "private" } };
    },
  },
  topic: {
    args: " TEXT",
    help: "set the current room's topic; alone: clear it",
    inRoom: true,
    build: ({ rest, room }) => ({ request: { type: "moderate", room, action: "topic", topic: rest } }),
  },
  private: onTheRoom("private", "make the current room invitation only (owner only)"),
  public: onTheRoom("public", "make the current room open to everyone (owner only)"),
  invite: onAUser("invite", "let USER join the current room (a private room needs it)"),
  kick: onAUser("kick", "remove USER from the current room"),
  ban: onAUser("ban", "remove USER and keep them out until /unban"),
  unban: onAUser("unban", "let a banned USER join again"),
  mute: onAUser("mute", "USER still reads the current room but cannot write in it"),
  unmute: onAUser("unmute", "let a muted USER write again"),
  op: onAUser("op", "make USER a moderator of the current room (owner only)"),
  deop: onAUser("deop", "make a moderator a plain member again (owner only)"),
};

export const COMMANDS = Object.entries(COMMAND_TABLE).map(([command, { args }]) => `/${command}${args}`);

// What the composer's text asks for: null (a plain message), { send } (a message that
// starts with "/", typed as "//"), { request } (a protocol request), { action } (something
// the page does: { kind: "join" | "msg" | "query" | "rooms" | "who", ... }) or { error }.
// `room` is the current room's name, or null in a direct conversation.
export function parseCommand(text, room) {
  if (!text.startsWith("/")) return null;
  if (text.startsWith("//")) return { send: text.slice(1) };
  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(text.trim());
  const command = match[1].toLowerCase();
  const entry = Object.hasOwn(COMMAND_TABLE, command) ? COMMAND_TABLE[command] : undefined;
  if (entry === undefined) {
    return { error: `unknown command /${command}; try ${COMMANDS.join(", ")} (start with // to send a /)` };
  }
  const rest = match[2].trim();
  const words = rest === "" ? [] : rest.split(/\s+/);
  if (entry.inRoom && room === null) return { error: `/${command} works in a room` };
  const built = entry.build({ words, rest, room });
  if (built === null) return { error: `usage: /${command}${entry.args}` };
  return built;
}
