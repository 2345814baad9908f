// The sidebar's conversation lists (rooms, direct messages), one keyed button each: a new
// message updates its conversation's badges, not the lists.

import { el } from "./dom.js";
import { fullTime, whenText } from "./timeline.js";

export class SidebarView {
  // onOpen(key): a conversation was chosen.
  constructor({ rooms, dms, onOpen }) {
    this.lists = { room: rooms, dm: dms };
    this.onOpen = onOpen;
    this.buttons = new Map(); // key -> <button>
    this.current = null;
  }

  // Adds and removes items so the lists hold exactly the state's rooms and DMs.
  sync(state) {
    const wanted = new Set([...state.rooms].map((room) => `room:${room}`));
    for (const name of state.dms) wanted.add(`dm:${name}`);
    for (const [key, node] of this.buttons) {
      if (!wanted.has(key)) {
        node.parentElement.remove();
        this.buttons.delete(key);
      }
    }
    for (const key of [...wanted].sort()) {
      if (!this.buttons.has(key)) this.insert(key);
      this.update(state, key);
    }
    this.select(state.current);
  }

  // One conversation's label and badges.
  update(state, key) {
    const node = this.buttons.get(key);
    const conversation = state.conversations.get(key);
    if (node === undefined) return;
    const badges = node.querySelector(".badges");
    const unread = conversation ? conversation.unread : 0;
    const mentions = conversation ? conversation.mentions : 0;
    const items = [];
    if (mentions > 0) {
      const label = `${mentions} unread ${mentions === 1 ? "mention" : "mentions"}`;
      items.push(el("span", { className: "badge mention", attrs: { "aria-label": label } }, `@${mentions}`));
    }
    if (unread > 0) {
      items.push(el("span", { className: "badge unread", attrs: { "aria-label": `${unread} unread` } }, String(unread)));
    }
    const activity = node.querySelector(".activity");
    const lastTs = conversation ? conversation.lastTs : null;
    activity.textContent = lastTs ? whenText(lastTs) : "";
    if (lastTs) activity.title = `Last message ${fullTime(lastTs)}`;
    badges.replaceChildren(...items);
    badges.hidden = items.length === 0;
    node.classList.toggle("has-unread", unread > 0);
  }

  select(key) {
    const old = this.buttons.get(this.current);
    if (old !== undefined) old.removeAttribute("aria-current");
    this.current = key;
    const node = this.buttons.get(key);
    if (node !== undefined) node.setAttribute("aria-current", "true");
  }

  insert(key) {
    const [kind, name] = key.split(/:(.*)/s);
    const label = kind === "room" ? `#${name}` : name;
    const node = el(
      "button",
      { attrs: { type: "button" }, dataset: { key } },
      el("span", { className: "label" }, label),
      el("span", { className: "activity" }),
      el("span", { className: "badges", attrs: { hidden: "" } }),
    );
    node.addEventListener("click", () => this.onOpen(key));
    this.buttons.set(key, node);
    const list = this.lists[kind];
    const after = [...list.children].find((item) => item.firstChild.dataset.key > key);
    list.insertBefore(el("li", {}, node), after || null);
  }

  clear() {
    for (const node of this.buttons.values()) node.parentElement.remove();
    this.buttons.clear();
    this.current = null;
  }
}
