// The page's pure rules (securechat/web/chat.js): slash commands, room event lines,
// conversation keys and mentions. Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const module = process.env.CHAT_MODULE || new URL("../../securechat/web/chat.js", import.meta.url).href;
const { broadcastOf, conversationKey, mentionSpans, mentions, mentionsIn, parseCommand, roomEventText, roomRunText, unreadKey } = await import(module);
const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8")).cases;

test("moderation commands act on the current room, with the target's name normalized", () => {
  assert.deepEqual(parseCommand("/kick @Bob", "ops"), {
    request: { type: "moderate", room: "ops", action: "kick", user: "bob" },
  });
  for (const action of ["invite", "ban", "unban", "mute", "unmute", "op", "deop"]) {
    assert.equal(parseCommand(`/${action} carol`, "ops").request.action, action);
  }
  assert.deepEqual(parseCommand("/topic  deploys at 17:00 ", "ops"), {
    request: { type: "moderate", room: "ops", action: "topic", topic: "deploys at 17:00" },
  });
  assert.equal(parseCommand("/topic", "ops").request.topic, ""); // clears it
  assert.deepEqual(parseCommand("/private", "ops").request, { type: "moderate", room: "ops", action: "private" });
  assert.deepEqual(parseCommand("/PUBLIC", "ops").request, { type: "moderate", room: "ops", action: "public" });
  assert.deepEqual(parseCommand("/leave", "ops").request, { type: "leave", room: "ops" });
});

test("create and join name their own room; the rest need one", () => {
  assert.deepEqual(parseCommand("/create #Ops private", null).request, { type: "create", room: "ops", private: true });
  assert.deepEqual(parseCommand("/create ops", "general").request, { type: "create", room: "ops", private: false });
  assert.deepEqual(parseCommand("/join #Dev", null).action, { kind: "join", room: "dev" });
  assert.deepEqual(parseCommand("/kick bob", null), { error: "/kick works in a room" });
  assert.deepEqual(parseCommand("/topic hi", null), { error: "/topic works in a room" });
});

test("wrong usage and unknown commands are errors; // sends a slash; text is no command", () => {
  assert.deepEqual(parseCommand("/kick", "ops"), { error: "usage: /kick USER" });
  assert.deepEqual(parseCommand("/kick bob carol", "ops"), { error: "usage: /kick USER" });
  assert.deepEqual(parseCommand("/create ops secret", "ops"), { error: "usage: /create ROOM [private]" });
  assert.deepEqual(parseCommand("/private now", "ops"), { error: "usage: /private" });
  assert.match(parseCommand("/shrug", "ops").error, /^unknown command \/shrug; try \/join ROOM/);
  assert.deepEqual(parseCommand("//not a command", "ops"), { send: "/not a command" });
  assert.equal(parseCommand("hello /kick bob", "ops"), null);
});

test("room events read as lines, with 'you' for this user", () => {
  const event = (fields) => ({ type: "room_event", id: 1, room: "ops", actor: "bob", ts: "t", ...fields });
  assert.equal(roomEventText(event({ action: "kick", user: "carol" }), "alice"), "bob kicked carol");
  assert.equal(roomEventText(event({ action: "ban", user: "alice" }), "alice"), "bob banned you");
  assert.equal(roomEventText(event({ action: "mute", actor: "alice", user: "carol" }), "alice"), "You muted carol");
  assert.equal(roomEventText(event({ action: "op", user: "carol" }), "alice"), "bob made carol a moderator");
  assert.equal(roomEventText(event({ action: "deop", user: "carol" }), "alice"), "bob made carol a member again");
  assert.equal(roomEventText(event({ action: "transfer", user: "carol" }), "alice"), "bob handed #ops over to carol");
  assert.equal(roomEventText(event({ action: "private" }), "alice"), "#ops is now private (by bob)");
  assert.equal(roomEventText(event({ action: "topic", topic: "on call" }), "alice"), "topic changed to “on call” by bob");
  assert.equal(roomEventText(event({ action: "topic", topic: "" }), "alice"), "topic cleared by bob");
  assert.equal(roomEventText(event({ action: "delete" }), "alice"), "bob deleted #ops");
  assert.equal(roomEventText(event({ action: "op", actor: "alice", user: "alice" }), "alice"), "You made yourself a moderator");
  assert.equal(roomEventText(event({ action: "deop", user: "bob" }), "alice"), "bob made themselves a member again");
  assert.equal(roomEventText(event({ action: "op", actor: "alice", user: "bob" }), "alice"), "You made bob a moderator");
  assert.equal(roomEventText(event({ action: "something-new", user: "carol" }), "alice"), "bob: something-new carol");
  assert.equal(roomEventText(event({ action: "join", user: "bob" }), "alice"), "bob joined #ops");
  assert.equal(roomEventText(event({ action: "leave", user: "bob" }), "alice"), "bob left #ops");
  assert.equal(roomEventText(event({ action: "join", actor: "alice", user: "alice" }), "alice"), "You joined #ops");
});

test("a run of joins names three people, then counts the others", () => {
  const join = (user) => ({ type: "room_event", id: 1, room: "dev", action: "join", actor: user, user, ts: "t" });
  const run = (...users) => roomRunText(users.map(join), "alice");
  assert.equal(run("bob"), "bob joined #dev");
  assert.equal(run("bob", "carol"), "bob and carol joined #dev");
  assert.equal(run("bob", "carol", "dave"), "bob, carol and dave joined #dev");
  assert.equal(run("bob", "carol", "dave", "erin"), "bob, carol, dave and 1 other joined #dev");
  assert.equal(run("alice", "bob", "carol", "dave", "erin", "bob"), "You, bob, carol and 2 others joined #dev");
  const invite = (user) => ({ type: "room_event", id: 1, room: "dev", action: "invite", actor: "directory", user, ts: "t" });
  assert.equal(roomRunText(["bob", "carol"].map(invite), "alice"), "directory invited bob and carol");
});

test("conversation keys, unread keys and mentions", () => {
  assert.equal(conversationKey({ room: "ops", from: "bob" }, "alice"), "room:ops");
  assert.equal(conversationKey({ to: "alice", from: "bob" }, "alice"), "dm:bob");
  assert.equal(conversationKey({ to: "bob", from: "alice" }, "alice"), "dm:bob");
  assert.equal(unreadKey({ key: "r:ops", room: "ops" }), "room:ops");
  assert.equal(unreadKey({ key: "u:carol", with: "carol" }), "dm:carol");
  assert.equal(mentions("hey @Alice, look", "alice"), true);
  assert.equal(mentions("mail alice@example.org", "alice"), false);
  assert.equal(mentions("@alice.b is someone else", "alice"), false);
  assert.equal(mentions("@al", "alice"), false);
  assert.deepEqual(mentionSpans("@alice, @ALICE and @alice.b or x@alice", "alice"), [[0, 6], [8, 14]]);
  assert.deepEqual(mentionSpans("no one", "alice"), []);
});

test("the mention rule follows the shared vectors (tests/vectors/mentions.json)", () => {
  for (const { why, body, mentions: names, spans, broadcast } of vectors("mentions.json")) {
    const found = mentionsIn(body);
    assert.deepEqual([...new Set(found.map((m) => m.name))].sort(), names, why);
    assert.deepEqual(found.map((m) => [m.start, m.end]), spans, why);
    assert.equal(broadcastOf(body), broadcast, why);
    for (const name of new Set([...names, "alice", "bob"])) {
      const named = names.includes(name);
      assert.equal(mentions(body, name.toUpperCase()), named || broadcast === "room", `${why}: ${name}`);
      assert.equal(mentions(body, name.toUpperCase(), true), named || broadcast !== null, `${why}: ${name} online`);
    }
  }
});

test("the commands both clients have read as the shared table says (tests/vectors/commands.json)", async () => {
  const { COMMAND_TABLE } = await import(module.replace(/chat\.js$/, "commands.js"));
  const shared = JSON.parse(readFileSync(new URL("../vectors/commands.json", import.meta.url), "utf8"));
  for (const { usage, help } of shared.commands) {
    const [command] = usage.split(" ");
    const entry = COMMAND_TABLE[command.slice(1)];
    assert.ok(entry !== undefined, `${command} is missing from the page`);
    assert.equal(`${command}${entry.args}`, usage);
    assert.equal(entry.help, help, command);
  }
  const listed = new Set([...shared.commands.map(({ usage }) => usage.split(" ")[0]), ...Object.keys(shared.page_only)]);
  assert.deepEqual(Object.keys(COMMAND_TABLE).map((name) => `/${name}`).filter((name) => !listed.has(name)), []);
});

test("names are checked before a request is built", () => {
  assert.match(parseCommand("/join #no way", null).error, /^usage: \/join ROOM/);
  assert.match(parseCommand("/join zoë", null).error, /^not a valid room name: zoë \(2-32 characters/);
  assert.match(parseCommand("/kick b", "ops").error, /^not a valid user name: b/);
  assert.deepEqual(parseCommand("/msg @Bob  hello  there", null).action, { kind: "msg", user: "bob", body: "hello  there" });
  assert.deepEqual(parseCommand("/msg bob", null), { error: "usage: /msg USER TEXT" });
  assert.deepEqual(parseCommand("/query Bob", "ops").action, { kind: "query", user: "bob" });
  assert.deepEqual(parseCommand("/who", "ops").action, { kind: "who" });
  assert.deepEqual(parseCommand("/rooms", null).action, { kind: "rooms" });
  assert.deepEqual(parseCommand("/leave #Dev", null).request, { type: "leave", room: "dev" });
  assert.match(parseCommand("/leave", null).error, /^\/leave works in a room/);
});
