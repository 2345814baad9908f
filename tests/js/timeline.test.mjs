// Day separators, hover times and shared headers (securechat/web/timeline.js).
// Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.TIMELINE_MODULE || new URL("../../securechat/web/timeline.js", import.meta.url).href;
const { continues, dayKey, dayLabel, fullTime, runKey, sameRun, whenText } = await import(module);

const NOW = new Date(2026, 11, 7, 9, 30); // Mon 7 Dec 2026, 09:30 local time
const at = (...parts) => new Date(...parts).toISOString();

test("days read as Today, Yesterday, a weekday with the date, and the year when another", () => {
  assert.equal(dayLabel(at(2026, 11, 7, 0, 1), NOW, "en"), "Today");
  assert.equal(dayLabel(at(2026, 11, 6, 23, 59), NOW, "en"), "Yesterday");
  assert.equal(dayLabel(at(2026, 10, 30, 6, 39), NOW, "en"), "Mon 30 Nov");
  assert.equal(dayLabel(at(2025, 11, 31, 12, 0), NOW, "en"), "Wed 31 Dec 2025");
  assert.equal(dayLabel(at(2026, 0, 1, 12, 0), new Date(2026, 0, 2), "en"), "Yesterday"); // across a year
  assert.equal(dayLabel("not a time", NOW), "");
  assert.equal(dayKey(at(2026, 10, 30, 23, 59)), "2026-11-30");
});

test("the hover shows the full date and the time to the second", () => {
  const text = fullTime(at(2026, 10, 30, 10, 2, 15), "en-GB");
  assert.match(text, /Monday/);
  assert.match(text, /30 November 2026/);
  assert.match(text, /10:02:15/);
});

test("one sender's messages a few minutes apart share a header; others do not", () => {
  const message = (from, minute, fields = {}) => ({ type: "message", from, ts: at(2026, 11, 7, 9, minute), ...fields });
  assert.equal(continues(message("bob", 0), message("bob", 4)), true);
  assert.equal(continues(message("bob", 0), message("bob", 6)), false);
  assert.equal(continues(message("bob", 0), message("carol", 1)), false);
  assert.equal(continues(null, message("bob", 1)), false);
  assert.equal(continues({ type: "room_event", actor: "bob", ts: at(2026, 11, 7, 9, 0) }, message("bob", 1)), false);
  const lateNight = { type: "message", from: "bob", ts: at(2026, 11, 6, 23, 59) };
  assert.equal(continues(lateNight, { type: "message", from: "bob", ts: at(2026, 11, 7, 0, 1) }), false);
});

test("last activity and last seen read as a time today, else with the day", () => {
  assert.match(whenText(at(2026, 11, 7, 8, 5), NOW, "en-GB"), /^08:05$/);
  assert.match(whenText(at(2026, 11, 6, 17, 31), NOW, "en-GB"), /^Yesterday 17:31$/);
  assert.match(whenText(at(2026, 10, 30, 9, 15), NOW, "en-GB"), /^Mon 30 Nov 09:15$/);
  assert.equal(whenText("not a time", NOW), "");
});

test("a burst of joins, of leaves, or of one actor's invitations is one run; nothing else is", () => {
  const event = (action, actor, user, minute = 0, day = 7) =>
    ({ type: "room_event", action, actor, user, ts: at(2026, 11, day, 9, minute) });
  assert.equal(sameRun(event("join", "bob", "bob"), event("join", "carol", "carol", 40)), true);
  assert.equal(sameRun(event("leave", "bob", "bob"), event("leave", "carol", "carol")), true);
  assert.equal(sameRun(event("join", "bob", "bob"), event("leave", "carol", "carol")), false);
  assert.equal(sameRun(event("invite", "directory", "bob"), event("invite", "directory", "carol")), true);
  assert.equal(sameRun(event("invite", "alice", "bob"), event("invite", "directory", "carol")), false);
  assert.equal(sameRun(event("topic", "bob"), event("topic", "bob")), false);
  assert.equal(sameRun(event("join", "bob", "bob", 0, 6), event("join", "carol", "carol")), false); // another day
  assert.equal(sameRun({ type: "message", from: "bob", ts: at(2026, 11, 7, 9, 0) }, event("join", "carol", "carol")), false);
  assert.equal(sameRun(null, event("join", "carol", "carol")), false);
  assert.equal(runKey(event("kick", "alice", "bob")), "kick:alice");
});
