// The windowed timeline's arithmetic (securechat/web/listwindow.js).
// Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.LISTWINDOW_MODULE || new URL("../../securechat/web/listwindow.js", import.meta.url).href;
const { Heights, ROW_GUESS_PX, rowAt, rowsAround, spacers, spanHeight } = await import(module);

const keys = (count) => Array.from({ length: count }, (_, at) => at + 1);

test("an unmeasured row counts as the mean of the measured ones, or the guess before any", () => {
  const heights = new Heights();
  assert.equal(heights.of(7), ROW_GUESS_PX);
  heights.set(1, 20);
  heights.set(2, 40);
  assert.equal(heights.of(7), 30);
  assert.equal(heights.of(2), 40);
  heights.set(2, 60); // measured again: replaced, not added
  assert.equal(heights.estimate, 40);
  assert.equal(heights.total, 80);
  heights.clear();
  assert.equal(heights.of(1), ROW_GUESS_PX);
});

test("the spacers and the window add up to the whole list, whichever side is walked", () => {
  const ids = keys(10_000);
  const heights = new Heights(30);
  for (const id of [5, 9_000, 9_999]) heights.set(id, 100);
  const whole = spanHeight(ids, heights, 0, ids.length);
  for (const [start, end] of [[0, 40], [4_000, 4_050], [9_960, 10_000], [0, 0], [10_000, 10_000]]) {
    const { above, below } = spacers(ids, heights, start, end);
    assert.ok(Math.abs(above + spanHeight(ids, heights, start, end) + below - whole) < 1e-6);
    assert.ok(Math.abs(above - spanHeight(ids, heights, 0, start)) < 1e-6, `above ${start}`);
  }
  assert.equal(spacers(ids, heights, 9_960, 10_000).below, 0); // following the bottom
});

test("the window covers the view and the margin on each side of the anchor", () => {
  const ids = keys(1_000);
  const heights = new Heights(20);
  // Row 500's top at the view's top, a 200 px view, 100 px beyond each edge: 5 rows above,
  // 10 in the view, 5 below.
  assert.deepEqual(rowsAround(ids, heights, 500, 0, 200, 100), { start: 495, end: 515 });
  // Half of row 500 above the view.
  assert.deepEqual(rowsAround(ids, heights, 500, -10, 200, 100), { start: 495, end: 516 });
});

test("at the ends the window stops at the first and the last row", () => {
  const ids = keys(100);
  const heights = new Heights(20);
  assert.deepEqual(rowsAround(ids, heights, 0, 0, 200, 100), { start: 0, end: 15 });
  // Following the bottom: the anchor is the end, its top the view's bottom.
  assert.deepEqual(rowsAround(ids, heights, 100, 200, 200, 100), { start: 85, end: 100 });
  assert.deepEqual(rowsAround([], heights, 0, 200, 200, 100), { start: 0, end: 0 });
});

test("the anchor is in the window even when it is far below the view", () => {
  const heights = new Heights(20);
  const { start, end } = rowsAround(keys(100), heights, 50, 5_000, 200, 100);
  assert.ok(start <= 50 && end > 50);
});

test("a jump finds the row under an offset, measured heights included", () => {
  const ids = keys(100);
  const heights = new Heights(20);
  heights.set(1, 200);
  heights.set(2, 20);
  assert.deepEqual(rowAt(ids, heights, 0), { index: 0, top: 0 });
  assert.deepEqual(rowAt(ids, heights, 199), { index: 0, top: 0 });
  assert.deepEqual(rowAt(ids, heights, 200), { index: 1, top: 200 });
  assert.deepEqual(rowAt(ids, heights, 245), { index: 2, top: 220 }); // the mean is 110
  assert.deepEqual(rowAt(ids, heights, 1e9).index, 100);
});
