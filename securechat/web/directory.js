// The directories: people (everyone who may log in, online or "last seen …", searchable;
// each starts a direct conversation), rooms (public rooms with topic and member count, each
// with Join), the current room's members with their roles, and invitations to private rooms.
// Views only: what they show comes from the state (state.js).

import { button, el } from "./dom.js";
import { findPeople } from "./state.js";
import { whenText } from "./timeline.js";

const PEOPLE_SHOWN = 50; // a longer match list says how many more instead: type to narrow

export class PeopleView {
  // onOpen(key): a direct conversation was chosen.
  constructor({ list, filter, count, onOpen }) {
    this.list = list;
    this.filter = filter;
    this.count = count;
    this.onOpen = onOpen;
    this.state = null;
    filter.addEventListener("input", () => this.state !== null && this.render(this.state));
  }

  render(state) {
    this.state = state;
    const others = state.people.size - (state.people.has(state.me) ? 1 : 0); // the list leaves you out
    this.count.textContent = state.people.size > 0 ? `(${others})` : "";
    const found = findPeople(state, this.filter.value);
    const items = found.slice(0, PEOPLE_SHOWN).map((name) => {
      const person = state.people.get(name);
      const presence = person.online ? "online" : person.lastSeen ? `last seen ${whenText(person.lastSeen)}` : "never seen";
      const node = el(
        "button",
        { attrs: { type: "button", title: `Message ${name}` }, dataset: { user: name } },
        el("span", { className: person.online ? "dot" : "dot away", attrs: { "aria-hidden": "true" } }, "●"),
        el("span", { className: "label" }, name),
        el("span", { className: "presence" }, presence),
      );
      node.addEventListener("click", () => this.onOpen(`dm:${name}`));
      return el("li", {}, node);
    });
    if (found.length > PEOPLE_SHOWN) items.push(el("li", { className: "more" }, `${found.length - PEOPLE_SHOWN} more: type to narrow`));
    if (found.length === 0 && state.people.size > 0) items.push(el("li", { className: "more" }, "Nobody by that name."));
    this.list.replaceChildren(...items);
  }

  clear() {
    this.state = null;
    this.filter.value = "";
    this.count.textContent = "";
    this.list.replaceChildren();
  }
}

// The room directory: a panel over the conversation, like search results.
export class RoomDirectoryView {
  // messages: the timeline it covers; onJoin(room), onOpen(key)
  constructor({ panel, list, status, messages, onJoin, onOpen }) {
    Object.assign(this, { panel, list, status, messages, onJoin, onOpen });
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  open() {
    this.panel.hidden = false;
    this.messages.hidden = true;
    this.status.textContent = "Loading rooms…";
    this.list.replaceChildren();
  }

  close() {
    if (this.panel.hidden) return;
    this.panel.hidden = true;
    this.messages.hidden = false;
  }

  render(rooms, text = "") {
    const shown = rooms.filter((room) => room.private !== true || room.joined);
    this.status.textContent = text || `${shown.length} ${shown.length === 1 ? "room" : "rooms"}`;
    this.list.replaceChildren(
      ...shown.map((room) => {
        const members = `${room.members} ${room.members === 1 ? "member" : "members"}`;
        const action = room.joined
          ? button("Open", () => this.onOpen(`room:${room.name}`), { attrs: { "aria-label": `Open #${room.name}` } })
          : button("Join", () => this.onJoin(room.name), { attrs: { "aria-label": `Join #${room.name}` } });
        return el(
          "li",
          { dataset: { room: room.name } },
          el("div", { className: "room-head" }, el("strong", {}, `#${room.name}`), el("span", { className: "members" }, members), action),
          room.topic ? el("p", { className: "topic" }, room.topic) : null,
        );
      }),
    );
  }
}

// The current room's members, owner and moderators first.
export class MembersView {
  constructor({ box, summary, list }) {
    Object.assign(this, { box, summary, list });
  }

  render(members) {
    this.box.hidden = members.length === 0;
    this.summary.textContent = `${members.length} ${members.length === 1 ? "member" : "members"}`;
    this.list.replaceChildren(
      ...members.map(({ name, role, online, muted }) =>
        el(
          "li",
          { dataset: { user: name, role, online: online ? "yes" : "no" } },
          el("span", { className: online ? "dot" : "dot away", attrs: { "aria-hidden": "true" } }, "●"),
          el("span", { className: "label" }, name),
          role !== "member" ? el("span", { className: "role" }, role) : null,
          muted ? el("span", { className: "role" }, "muted") : null,
        ),
      ),
    );
  }
}

// Invitations to private rooms this user is not in yet, each with Join.
export class InvitesView {
  constructor({ heading, list, onJoin }) {
    Object.assign(this, { heading, list, onJoin });
  }

  render(state) {
    const rooms = [...state.invites.keys()].sort();
    this.heading.hidden = rooms.length === 0;
    this.list.replaceChildren(
      ...rooms.map((room) => {
        const invite = state.invites.get(room);
        return el(
          "li",
          { className: "invite", dataset: { room } },
          el("span", { className: "label" }, `#${room}`),
          el("span", { className: "by" }, `from ${invite.actor}`),
          button("Join", () => this.onJoin(room), { attrs: { "aria-label": `Join #${room} (invited by ${invite.actor})` } }),
        );
      }),
    );
  }
}
