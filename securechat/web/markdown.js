// Message bodies as a CommonMark subset: the vendored markdown-it parses, and this turns its
// token stream into a plain tree ({ tag, attrs, children } and strings) that the view makes
// DOM nodes from with el(): never an HTML string, and raw HTML stays text (html: false).
//
// What renders: paragraphs, line breaks, **bold**, *italic*, ~~struck~~, `inline code`,
// fenced code (``` ... ```) in <pre><code>, > quotes, lists, [links](https://...) and bare
// URLs. Only http:, https: and mailto: become links, opening apart from the chat with
// rel="noopener noreferrer"; any other link stays its text. Headings, tables, images and
// indented code are left as typed: in a chat they are more often accidents than intent.

import "./vendor/markdown-it.min.js"; // sets globalThis.markdownit (a UMD build)

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const RULES = ["backticks", "emphasis", "strikethrough", "link", "autolink", "linkify", "newline", "escape", "fence", "blockquote", "list"];
const BLOCKS = { paragraph_open: "p", bullet_list_open: "ul", ordered_list_open: "ol", list_item_open: "li", blockquote_open: "blockquote" };
const INLINE = { strong_open: "strong", em_open: "em", s_open: "s" };

const parser = globalThis.markdownit("zero", { html: false, linkify: true, breaks: true }).enable(RULES);

// `href` when it may be a link here (an absolute http:, https: or mailto: URL), else null.
export function safeHref(href) {
  let url;
  try {
    url = new URL(href);
  } catch {
    return null; // relative, or not a URL: the link stays its text
  }
  return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

// The tree for `body`: an array of strings and { tag, attrs, children } nodes.
export function renderTree(body) {
  const root = { tag: null, attrs: {}, children: [] };
  const stack = [root];
  for (const token of parser.parse(body, {})) {
    const top = stack[stack.length - 1];
    if (token.type === "inline") top.children.push(...inlineTree(token.children));
    else if (token.type === "fence") top.children.push(node("pre", {}, [node("code", {}, [token.content])]));
    else if (token.nesting === 1) {
      if (token.hidden) {
        stack.push(top); // a tight list's paragraph: its text goes straight into the item
        continue;
      }
      const start = token.type === "ordered_list_open" ? token.attrGet("start") : null;
      const attrs = start !== null ? { start: String(start) } : {};
      const child = node(BLOCKS[token.type] || "div", attrs, []);
      top.children.push(child);
      stack.push(child);
    } else if (token.nesting === -1 && stack.length > 1) stack.pop();
  }
  return root.children;
}

function node(tag, attrs, children) {
  return { tag, attrs, children };
}

function inlineTree(tokens) {
  const root = node(null, {}, []);
  const stack = [root];
  for (const token of tokens) {
    const top = stack[stack.length - 1];
    if (token.type === "text") {
      if (token.content !== "") top.children.push(token.content);
    } else if (token.type === "code_inline") top.children.push(node("code", {}, [token.content]));
    else if (token.type === "hardbreak" || token.type === "softbreak") top.children.push(node("br", {}, []));
    else if (token.type === "link_open") {
      const href = safeHref(token.attrGet("href"));
      const attrs = href === null ? {} : { href, rel: "noopener noreferrer", target: "_blank" };
      const child = node(href === null ? "span" : "a", attrs, []);
      top.children.push(child);
      stack.push(child);
    } else if (INLINE[token.type] !== undefined) {
      const child = node(INLINE[token.type], {}, []);
      top.children.push(child);
      stack.push(child);
    } else if (token.nesting === -1 && stack.length > 1) stack.pop();
    else if (token.content) top.children.push(token.content); // what later rules add, as text
  }
  return root.children;
}
