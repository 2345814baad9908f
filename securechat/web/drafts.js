// What the composer may send, checked before it is sent: pure, tested under Node
// (tests/js/drafts.test.mjs).
//
// The limits come from the server's hello: `max_body` (characters, as the server counts
// them: code points) when the server announces it, and always `max_frame` (bytes): the
// WebSocket message that carries the send must fit in one frame, or the server closes the
// connection. A server that does not announce `max_body` refuses a longer body with
// `too_large`, and the page puts the text back in the composer.

const NEAR_SHARE = 0.1; // the counter shows in the last tenth of the limit...
const NEAR_MIN = 100; // ...or the last 100, whichever is more
const encoder = new TextEncoder();

// The limits a hello announces.
export function sendLimits(hello) {
  const integer = (value) => (Number.isInteger(value) && value > 0 ? value : null);
  return { maxBody: integer(hello && hello.max_body), maxFrame: integer(hello && hello.max_frame) };
}

// The size of the send frame for `body` (the session adds a ref of at most this length).
const REF_ROOM = 40;
function frameBytes(body, target) {
  const send = { type: "send", body, ref: "w".repeat(REF_ROOM), ...target };
  return encoder.encode(JSON.stringify(send)).length;
}

// How `body` stands against the limits: { over, near, left, unit, max }. `left` is what
// may still be added (negative: how much too long), in characters or, when only the frame
// limit is known or it is the tighter one, in bytes.
export function checkDraft(body, target, limits) {
  const results = [];
  if (limits.maxBody !== null) {
    results.push({ left: limits.maxBody - [...body].length, unit: "characters", max: limits.maxBody });
  }
  if (limits.maxFrame !== null) {
    const bytes = frameBytes(body, target);
    const overhead = bytes - encoder.encode(body).length;
    results.push({ left: limits.maxFrame - bytes, unit: "bytes", max: limits.maxFrame - overhead });
  }
  if (results.length === 0) return { over: false, near: false, left: Infinity, unit: "characters", max: Infinity };
  const tightest = results.reduce((a, b) => (b.left < a.left ? b : a));
  const near = tightest.left <= Math.max(NEAR_MIN, tightest.max * NEAR_SHARE);
  return { ...tightest, over: tightest.left < 0, near };
}

// The counter's text: "120 characters left", "35 characters too long".
export function counterText(check) {
  const count = Math.abs(check.left).toLocaleString("en");
  const unit = Math.abs(check.left) === 1 ? check.unit.slice(0, -1) : check.unit;
  return check.left < 0 ? `${count} ${unit} too long` : `${count} ${unit} left`;
}

// The error shown when the text cannot be sent as it is.
export function tooLongText(check) {
  const max = check.max.toLocaleString("en");
  return `Too long to send: ${counterText(check)} (the limit is ${max} ${check.unit}). Shorten it or split it into several messages.`;
}
