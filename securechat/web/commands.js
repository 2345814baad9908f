// The composer's slash commands: one small entry per command, as the event table has one
// handler per event. Each entry says its arguments (for the usage line) and builds its
// request from the words typed; parseCommand() is the only way in.

const name = (raw, sigil) => raw.trim().replace(sigil, "").toLowerCase();

// A moderation of the current room on one user: /kick USER and so on.
const onAUser = (action) => ({
  args: " USER",
  inRoom: true,
  build: ({ words, room }) => (words.length === 1 ? { type: "moderate", room, action, user: name(words[0], /^@/) } : null),
});

// A moderation of the current room with no argument: /private, /public.
const onTheRoom = (action) => ({
  args: "",
  inRoom: true,
  build: ({ words, room }) => (words.length === 0 ? { type: "moderate", room, action } : null),
});

// name -> { args (the usage line), inRoom (needs a current room), build (null: wrong usage) }
export const COMMAND_TABLE = {
  create: {
    args: " ROOM [private]",
    inRoom: false,
    build: ({ words }) => {
      const flag = words[1] === undefined ? null : words[1].toLowerCase();
      if (words.length < 1 || words.length > 2 || (flag !== null && flag !== "private")) return null;
      return { type: "create", room: name(words[0], /^#/), private: flag === "private" };
    },
  },
  join: {
    args: " ROOM",
    inRoom: false,
    build: ({ words }) => (words.length === 1 ? { type: "join", room: name(words[0], /^#/) } : null),
  },
  leave: { args: "", inRoom: true, build: ({ words, room }) => (words.length === 0 ? { type: "leave", room } : null) },
  topic: { args: " TEXT", inRoom: true, build: ({ rest, room }) => ({ type: "moderate", room, action: "topic", topic: rest }) },
  private: onTheRoom("private"),
  public: onTheRoom("public"),
  ...Object.fromEntries(["invite", "kick", "ban", "unban", "mute", "unmute", "op", "deop"].map((action) => [action, onAUser(action)])),
};

export const COMMANDS = Object.entries(COMMAND_TABLE).map(([command, { args }]) => `/${command}${args}`);

// What the composer's text asks for: null (a plain message), { send } (a message that
// starts with "/", typed as "//"), { request } (a protocol request) or { error }.
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
  const request = entry.build({ words, rest, room });
  if (request === null) return { error: `usage: /${command}${entry.args}` };
  if (entry.inRoom && room === null) return { error: `/${command} works in a room` };
  return { request };
}
