// Which rows of a long list are in the document (the window), and how tall the rest is:
// the arithmetic of the windowed timeline (messages.js), with no DOM. Rows are named by key
// (message ids, ascending); a row's height is what was measured when it was last in the
// document, else the mean of the measured ones. Pure: tested under Node
// (tests/js/listwindow.test.mjs).

export const ROW_GUESS_PX = 48; // a row's height before any was measured

// Measured row heights by key, and their mean as the guess for the others.
export class Heights {
  constructor(guess = ROW_GUESS_PX) {
    this.guess = guess;
    this.known = new Map(); // key -> px
    this.total = 0; // the sum of `known`
  }

  set(key, px) {
    const old = this.known.get(key);
    if (old === px) return;
    if (old !== undefined) this.total -= old;
    this.known.set(key, px);
    this.total += px;
  }

  get estimate() {
    return this.known.size > 0 ? this.total / this.known.size : this.guess;
  }

  of(key) {
    const px = this.known.get(key);
    return px === undefined ? this.estimate : px;
  }

  clear() {
    this.known.clear();
    this.total = 0;
  }
}

// The height of rows [from, to) of `keys`.
export function spanHeight(keys, heights, from, to) {
  let px = 0;
  for (let at = from; at < to; at += 1) px += heights.of(keys[at]);
  return px;
}

// The heights of the spacers that stand for the rows above and below the window [start, end):
// the whole list's height is known from the sums, so only the shorter side is walked (the
// side below is empty while following new messages: O(window)).
export function spacers(keys, heights, start, end) {
  const known = heights.known.size;
  const all = heights.total + Math.max(0, keys.length - known) * heights.estimate;
  const inside = spanHeight(keys, heights, start, end);
  if (start <= keys.length - end) {
    const above = spanHeight(keys, heights, 0, start);
    return { above, below: Math.max(0, all - above - inside) };
  }
  const below = spanHeight(keys, heights, end, keys.length);
  return { above: Math.max(0, all - below - inside), below };
}

// The window around row `anchor` (an index; keys.length: the end), whose top is `top` px
// from the top of a view `viewport` px tall (negative: above it): the rows that cover the
// view and `margin` px beyond each edge, the anchor always among them. O(window).
export function rowsAround(keys, heights, anchor, top, viewport, margin) {
  let start = Math.min(anchor, keys.length);
  let above = top; // the top of row `start`, from the view's top
  while (start > 0 && above > -margin) {
    start -= 1;
    above -= heights.of(keys[start]);
  }
  let end = Math.min(anchor, keys.length);
  let below = top; // the bottom of row `end - 1`
  while (end < keys.length && (end <= anchor || below < viewport + margin)) {
    below += heights.of(keys[end]);
    end += 1;
  }
  return { start, end };
}

// The row at `offset` px from the top of the first row, and that row's own top: where a
// jump (a scroll bar dragged far) lands, away from every row in the document. O(n).
export function rowAt(keys, heights, offset) {
  let top = 0;
  for (let at = 0; at < keys.length; at += 1) {
    const px = heights.of(keys[at]);
    if (top + px > offset) return { index: at, top };
    top += px;
  }
  return { index: keys.length, top };
}
