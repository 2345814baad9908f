// Rooms and people: joining (asking "Create #name?" when there is none), invitations, the
// room directory, the member list, the people directory, and the slash commands that are
// page actions (/join, /msg, /query, /rooms, /who). Between Writer and the App (app.js).

import { $ } from "./dom.js";
import { NAME_RULE, typedName } from "./names.js";
import * as S from "./state.js";
import { Writer } from "./writer.js";

export class Rooms extends Writer {
  constructor() {
    super();
    this.directoryPages = null; // rooms gathered from `rooms` pages, while paging
    this.peoplePages = null; // people gathered from `people` pages, while paging
    this.asking = null; // the room "Create #name?" asks about
    this.typedJoins = new WeakSet(); // joins typed as /join: their refusals show at the composer
  }

  // A room name typed in the form or a command: checked, then joined without creating it.
  joinRoom(raw, { fromForm = false } = {}) {
    const room = typedName(raw, "#");
    const error = fromForm ? (text) => ($("join-error").textContent = text) : (text) => this.composer.error(text);
    if (room === null) {
      if (raw.trim() !== "") error(`Not a valid room name (${NAME_RULE}).`);
      return;
    }
    if (!this.connection.isReady) {
      error("Not connected; try again in a moment.");
      return;
    }
    const join = { type: "join", room, create: false };
    if (!fromForm) this.typedJoins.add(join);
    this.connection.request(join);
  }

  createRoom(raw, isPrivate) {
    const room = typedName(raw, "#");
    if (room === null) {
      $("join-error").textContent = `Not a valid room name (${NAME_RULE}).`;
      return;
    }
    if (!this.connection.isReady) {
      $("join-error").textContent = "Not connected; try again in a moment.";
      return;
    }
    this.connection.request({ type: "create", room, private: isPrivate });
  }

  joinedReply(asked, event, { quiet, command }) {
    const state = this.state;
    if (event.type !== "joined") {
      if (quiet) return;
      if (asked.type === "join" && event.code === "no_such_room") this.askCreate(asked.room);
      else if (command || this.typedJoins.has(asked)) this.composer.error(event.message);
      else $("join-error").textContent = event.message;
      return;
    }
    if (S.applyJoined(state, event)) this.sidebar.sync(state);
    this.invitesView.render(state);
    if (this.directoryView.isOpen) this.showDirectory(); // its Join became Open
    if (quiet) {
      if (state.current === `room:${event.room}`) {
        this.renderHeader();
        this.renderMembers();
        this.messages.rebuild(); // a moderator's Delete buttons on others' messages
      }
      return;
    }
    $("join-room").value = "";
    $("create-private").checked = false;
    $("join-error").textContent = "";
    this.askCreate(null);
    const first = this.firstJoin === event.room;
    this.firstJoin = null;
    if (first && state.current !== null) {
      this.sidebar.sync(state); // the user opened another one meanwhile: it stays
      return;
    }
    if (this.directoryView.isOpen) this.directoryView.close();
    this.open(`room:${event.room}`, { behindSearch: first });
    if (this.search === null) this.composer.focus();
  }

  // "There is no room #name you can join. Create it?": whoever says yes owns it. null hides it.
  askCreate(room) {
    this.asking = room;
    $("create-question").hidden = room === null;
    if (room === null) return;
    this.toggleMenu(false); // on a phone the question is behind the menu
    $("create-question-text").textContent = `There is no room #${room} you can join (a private room needs an invitation). Create #${room}? You will own it.`;
    $("create-yes").textContent = `Create #${room}`;
    $("create-yes").focus();
  }

  answerCreate(yes) {
    const room = this.asking;
    this.askCreate(null);
    if (yes && room !== null) this.createRoom(room, $("create-private").checked);
    else this.composer.focus();
  }

  roomGone(room) {
    const state = this.state;
    const wasCurrent = state.current === `room:${room}`;
    const notice = S.removeRoom(state, room);
    if (notice === null) return;
    this.showNotice(notice);
    this.sidebar.sync(state);
    this.sidebarUpdate(`room:${room}`);
    if (!wasCurrent) return;
    const next = S.fallbackRoom(state);
    if (next !== undefined) this.open(`room:${next}`, { keepNotice: true });
    else this.openNothing();
  }

  // The current room's member list, when a room is open.
  renderMembers() {
    const conversation = this.state.conversations.get(this.state.current);
    this.membersView.render(conversation && conversation.kind === "room" ? S.membersOf(this.state, conversation.name) : []);
  }

  // --- the directories ---------------------------------------------------------------------

  showDirectory() {
    if (this.directoryPages !== null) return;
    if (!this.connection.isReady) {
      this.composer.error("Not connected; try again in a moment.");
      return;
    }
    if (this.search !== null) this.closeSearch();
    if (!this.directoryView.isOpen) this.directoryView.open();
    this.directoryPages = [];
    this.connection.request({ type: "rooms" });
  }

  roomsPage(event) {
    if (event.type !== "rooms" || this.directoryPages === null) {
      this.directoryPages = null;
      if (event.type === "error") this.directoryView.render([], event.message);
      return;
    }
    this.directoryPages.push(...event.rooms);
    const last = event.rooms[event.rooms.length - 1];
    if (event.more && last !== undefined) {
      this.connection.request({ type: "rooms", after: last.name });
      return;
    }
    this.directoryView.render(this.directoryPages);
    this.directoryPages = null;
  }

  refreshPeople() {
    if (this.peoplePages !== null || this.connection === null || !this.connection.isReady) return;
    this.peoplePages = [];
    this.connection.request({ type: "people" });
  }

  peoplePage(event) {
    if (event.type !== "people" || this.peoplePages === null) {
      this.peoplePages = null; // a server from before `people`: the Online list stays
      return;
    }
    this.peoplePages.push(...event.people);
    const last = event.people[event.people.length - 1];
    if (event.more && last !== undefined) {
      this.connection.request({ type: "people", after: last.name });
      return;
    }
    S.applyPeople(this.state, this.peoplePages);
    this.peoplePages = null;
    this.presenceChanged();
  }

  presenceChanged() {
    this.online.render(this.state);
    this.people.render(this.state);
    this.renderMembers();
  }

  // --- slash commands that the page does itself --------------------------------------------

  commandAction(action) {
    if (action.kind === "join") this.joinRoom(action.room);
    else if (action.kind === "query") this.open(`dm:${action.user}`);
    else if (action.kind === "rooms") this.showDirectory();
    else if (action.kind === "who") {
      const others = [...this.state.online].sort();
      this.showNotice(`Online (${others.length}): ${others.join(", ")}`);
    } else if (action.kind === "msg") {
      if (!this.connection.isReady) {
        this.composer.error("Not connected; try again in a moment.");
        return;
      }
      if (this.state.people.size > 0 && !this.state.people.has(action.user)) {
        this.composer.error(`There is no user ${action.user}.`);
        return;
      }
      const conversation = S.conversation(this.state, `dm:${action.user}`);
      if (S.listConversation(this.state, conversation.key)) this.sidebar.sync(this.state);
      this.submit(conversation, action.body);
    }
  }
}
