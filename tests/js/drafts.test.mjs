// The composer's checks before sending (securechat/web/drafts.js): limits from the hello,
// the counter near them. Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.DRAFTS_MODULE || new URL("../../securechat/web/drafts.js", import.meta.url).href;
const { checkDraft, counterText, sendLimits, tooLongText } = await import(module);

const ROOM = { room: "general" };

test("the limits are what the hello announces, and only that", () => {
  assert.deepEqual(sendLimits({ max_frame: 65536, max_body: 4000 }), { maxBody: 4000, maxFrame: 65536 });
  assert.deepEqual(sendLimits({ max_frame: 65536 }), { maxBody: null, maxFrame: 65536 });
  assert.deepEqual(sendLimits({ max_frame: "big", max_body: -1 }), { maxBody: null, maxFrame: null });
  assert.deepEqual(sendLimits(null), { maxBody: null, maxFrame: null });
});

test("the body limit counts characters as the server does (code points), not UTF-16 units", () => {
  const limits = { maxBody: 10, maxFrame: null };
  assert.equal(checkDraft("😀".repeat(10), ROOM, limits).over, false);
  assert.equal(checkDraft("😀".repeat(11), ROOM, limits).left, -1);
  const short = checkDraft("hi", ROOM, { maxBody: 4000, maxFrame: null });
  assert.deepEqual([short.over, short.near, short.left], [false, false, 3998]);
  const near = checkDraft("x".repeat(3950), ROOM, { maxBody: 4000, maxFrame: null });
  assert.deepEqual([near.over, near.near], [false, true]);
  assert.equal(counterText(near), "50 characters left");
});

test("the frame limit counts the send's JSON in UTF-8 bytes, escapes included", () => {
  const limits = { maxBody: null, maxFrame: 1000 };
  const plain = checkDraft("x".repeat(100), ROOM, limits);
  assert.equal(plain.unit, "bytes");
  assert.equal(plain.over, false);
  const quotes = checkDraft('"'.repeat(600), ROOM, limits); // each escaped as two bytes
  assert.equal(quotes.over, true);
  const accents = checkDraft("é".repeat(600), ROOM, limits); // two bytes each in UTF-8
  assert.equal(accents.over, true);
  assert.equal(counterText({ left: -1, unit: "bytes" }), "1 byte too long");
});

test("the tighter limit speaks; no limit known means nothing is refused here", () => {
  const both = checkDraft("x".repeat(5000), ROOM, { maxBody: 4000, maxFrame: 65536 });
  assert.deepEqual([both.over, both.unit, both.left], [true, "characters", -1000]);
  assert.match(tooLongText(both), /^Too long to send: 1,000 characters too long \(the limit is 4,000 characters\)/);
  const none = checkDraft("x".repeat(100000), ROOM, { maxBody: null, maxFrame: null });
  assert.equal(none.over, false);
});
