// One message of the timeline as an <li>: built from text nodes only, with its buttons.
//
// `actions` is what the buttons call (the page's controller): startEditing, askDelete,
// confirmDelete, retry. Items are rebuilt whole when their message changes; the list view
// (messages.js) decides where they go.

import { mentionSpans, mentions } from "./chat.js";
import { el } from "./dom.js";
import { captionOf } from "./files.js";
import { renderTree } from "./markdown.js";
import { fullTime } from "./timeline.js";

// A message time as a <time> element: the hour, or the date and hour (search results);
// the full date and time on hover.
export function timeOf(ts, withDate = false) {
  const when = new Date(ts);
  const options = withDate
    ? { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  const text = Number.isNaN(when.getTime()) ? ts : when.toLocaleString([], options);
  return el("time", { attrs: { datetime: ts, title: fullTime(ts) } }, text);
}

// A body as text nodes, with each @mention of `user` in a <mark>: still text, never markup.
export function withMentions(body, user) {
  const parts = [];
  let at = 0;
  for (const [start, end] of mentionSpans(body, user)) {
    if (start > at) parts.push(body.slice(at, start));
    parts.push(el("mark", { className: "at-me" }, body.slice(start, end)));
    at = end;
  }
  if (at < body.length || parts.length === 0) parts.push(body.slice(at));
  return parts;
}

// A body's markdown (markdown.js) as DOM nodes made with el(): text stays text, with the
// reader's @mentions marked.
export function renderBody(body, me) {
  const build = (node) => (typeof node === "string" ? withMentions(node, me) : [el(node.tag, { attrs: node.attrs }, ...node.children.flatMap(build))]);
  return renderTree(body).flatMap(build);
}

function small(label, name, action, dataset = {}) {
  const node = el("button", { className: "quiet small", attrs: { type: "button", "aria-label": label }, dataset }, name);
  node.addEventListener("click", action);
  return node;
}

// What a message's buttons say it is, so that each label is unique to its message:
// "bob's message from 10:02, “see you at…”" or "your message from 10:02, “…”"; the same
// words again in the same minute are told apart by a count (see sameNameBefore).
export function messageName(message, me, repeat = 0) {
  const who = message.from === me ? "your" : `${message.from}'s`;
  const when = new Date(message.ts);
  const at = Number.isNaN(when.getTime()) ? "" : ` from ${when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
  return `${who} message${at}, “${excerpt(message.body)}”${repeat > 0 ? ` (${repeat + 1})` : ""}`;
}

// How many messages right before `message` in `conversation` would have its name.
export function sameNameBefore(conversation, message, me) {
  const name = messageName(message, me);
  let count = 0;
  for (let before = conversation.before(message.id); before !== null; before = conversation.before(before.id)) {
    if (before.type === "room_event" || messageName(before, me) !== name) break;
    count += 1;
  }
  return count;
}

// Edit and delete on one's own messages; delete on others' for a room's moderators.
function messageActions(conversation, message, { me, canDeleteOthers, actions }) {
  const mine = message.from === me;
  if (!mine && !canDeleteOthers) return null;
  const name = messageName(message, me, sameNameBefore(conversation, message, me));
  if (conversation.confirmDelete === message.id) {
    return el(
      "span",
      { className: "actions confirm", attrs: { role: "group", "aria-label": `Delete ${name}?` } },
      "Delete this message?",
      small(`Yes, delete ${name}`, "Delete", () => actions.confirmDelete(conversation, message.id, true), { confirm: "yes" }),
      small(`Keep ${name}`, "Cancel", () => actions.confirmDelete(conversation, message.id, false)),
    );
  }
  const node = el("span", { className: "actions" });
  if (mine) node.append(small(`Edit ${name}`, "Edit", () => actions.startEditing(conversation, message)));
  node.append(small(`Delete ${name}`, "Delete", () => actions.askDelete(conversation, message.id)));
  return node;
}

// A stored message: `conversation` gives its buttons.
export function messageItem(message, conversation, context) {
  const { me } = context;
  const status = message.from === me ? "sent" : null;
  const item = baseItem(message, status, me);
  if (!message.deleted) {
    const actions = messageActions(conversation, message, context);
    if (actions !== null) item.querySelector(".meta").append(actions);
    const files = context.actions.files ? context.actions.files.render(message) : null; // attachments.js
    if (files !== null) item.append(files);
  }
  return item;
}

// A send not yet stored, or refused: "sending…", or "failed" with what can be done:
// send it again, take it back into the composer to change it, or drop it.
export function pendingItem(conversation, ref, entry, { me, actions }) {
  const draft = { from: me, body: entry.send.body, ts: null };
  const item = baseItem(draft, entry.status, me);
  item.dataset.ref = ref;
  if (entry.status === "failed") {
    const badge = item.querySelector(".status");
    badge.title = entry.reason || "";
    const what = `your failed message “${excerpt(entry.send.body)}”`;
    const choice = (name, label, action) => {
      const node = el("button", { className: "quiet", attrs: { type: "button", "aria-label": `${label} ${what}` } }, name);
      node.addEventListener("click", () => action(conversation, ref));
      return node;
    };
    item.querySelector(".meta").append(
      el(
        "span",
        { className: "failed-actions" },
        choice("Retry", "Retry", actions.retry),
        choice("Edit", "Edit", actions.editFailed),
        choice("Dismiss", "Dismiss", actions.dismiss),
      ),
    );
    item.append(el("p", { className: "reason" }, entry.reason || ""));
  }
  const files = actions.files ? actions.files.renderSending(ref) : null; // attachments.js
  if (files !== null) item.append(files);
  return item;
}

// The start of a text, to tell messages apart in a label.
export function excerpt(text, length = 30) {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

function baseItem(message, status, me) {
  const classes = ["message"];
  if (message.from === me) classes.push("mine");
  else if (mentions(message.body, me)) classes.push("mention");
  if (message.deleted) classes.push("deleted");
  const meta = el("div", { className: "meta" }, el("span", { className: "from" }, message.from));
  if (message.ts) meta.append(timeOf(message.ts));
  if (message.edited && !message.deleted) {
    meta.append(el("span", { className: "edited", attrs: { title: `edited ${message.edited}` } }, "(edited)"));
  }
  if (status === "sending" || status === "failed") {
    // "sent" is the normal case, so it is not said (the item keeps data-status="sent").
    const labels = { sending: "sending…", failed: "failed" };
    meta.append(el("span", { className: "status", dataset: { status } }, labels[status]));
  }
  const dataset = message.id !== undefined ? { id: message.id } : {};
  if (status !== null) dataset.status = status;
  const body = message.deleted ? ["message deleted"] : renderBody(captionOf(message), me);
  return el("li", { className: classes.join(" "), dataset }, meta, el("div", { className: "body" }, ...body));
}

// A room event's line (`text`: a run's line, when it ends one).
export function systemItem(event, text = event.text) {
  return el("li", { className: "system", dataset: { id: event.id } }, text);
}
