// Message bodies as a CommonMark subset (securechat/web/markdown.js with the vendored
// markdown-it): the tree the page builds DOM nodes from. Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.MARKDOWN_MODULE || new URL("../../securechat/web/markdown.js", import.meta.url).href;
const { renderTree, safeHref } = await import(module);

const p = (...children) => ({ tag: "p", attrs: {}, children });
const tag = (name, ...children) => ({ tag: name, attrs: {}, children });

test("plain text is one paragraph of text; a newline is a line break", () => {
  assert.deepEqual(renderTree("hello there"), [p("hello there")]);
  assert.deepEqual(renderTree("two\nlines"), [p("two", tag("br"), "lines")]);
});

test("raw HTML stays text", () => {
  assert.deepEqual(renderTree("<img src=x onerror=alert(1)>"), [p("<img src=x onerror=alert(1)>")]);
  assert.deepEqual(renderTree("<script>alert(2)</script>"), [p("<script>alert(2)</script>")]);
});

test("bold, italic, struck and inline code", () => {
  assert.deepEqual(renderTree("**b** *i* ~~s~~ `x < 1`"), [
    p(tag("strong", "b"), " ", tag("em", "i"), " ", tag("s", "s"), " ", tag("code", "x < 1")),
  ]);
});

test("fenced code keeps its text in pre > code", () => {
  assert.deepEqual(renderTree("look:\n```\nif a:\n    b()\n```"), [p("look:"), tag("pre", tag("code", "if a:\n    b()\n"))]);
});

test("quotes and lists", () => {
  assert.deepEqual(renderTree("> quoted"), [tag("blockquote", p("quoted"))]);
  assert.deepEqual(renderTree("- one\n- two"), [tag("ul", tag("li", "one"), tag("li", "two"))]);
  assert.deepEqual(renderTree("3. three\n4. four"), [
    { tag: "ol", attrs: { start: "3" }, children: [tag("li", "three"), tag("li", "four")] },
  ]);
});

test("only http, https and mailto become links, with rel=noopener noreferrer", () => {
  const link = (href, text) => ({ tag: "a", attrs: { href, rel: "noopener noreferrer", target: "_blank" }, children: [text] });
  assert.deepEqual(renderTree("[docs](https://example.org/a)"), [p(link("https://example.org/a", "docs"))]);
  assert.deepEqual(renderTree("see https://example.org"), [p("see ", link("https://example.org/", "https://example.org"))]);
  assert.deepEqual(renderTree("[x](javascript:alert(1))"), [p("[x](javascript:alert(1))")]);
  assert.deepEqual(renderTree("[x](ftp://example.org/f)"), [p({ tag: "span", attrs: {}, children: ["x"] })]);
  assert.deepEqual(renderTree("[x](relative/path)"), [p({ tag: "span", attrs: {}, children: ["x"] })]);
  assert.equal(safeHref("mailto:bob@example.org"), "mailto:bob@example.org");
  assert.equal(safeHref("JavaScript:alert(1)"), null);
  assert.equal(safeHref("data:text/html,hi"), null);
});

test("headings and indented code are left as typed", () => {
  assert.deepEqual(renderTree("# not a heading"), [p("# not a heading")]);
  assert.deepEqual(renderTree("    four spaces"), [p("four spaces")]);
});
