// securechat in the browser: the composition root. It makes the state (state.js), the
// driver (connection.js), the event table (events.js) and the views, and holds the page's
// actions: logging in and out, opening a conversation, sending, editing, searching.
//
// Everything from the wire goes into the page as text (textContent, text nodes), never as
// markup. The resume token lives only in this module's memory: a reload asks for the
// password again (docs/security.md, "Web client"), unless the user chose to stay signed in
// (devices.js: an HttpOnly cookie the page never sees). This device remembers the last user
// name: the conversations come from the server (`conversations`), so every device shows
// the same.

import { conversationKey } from "./chat.js";
import { ComposerView } from "./composer.js";
import { DeviceControl, deviceHint } from "./devices.js";
import { Connection } from "./connection.js";
import { sendLimits } from "./drafts.js";
import { InvitesView, MembersView, PeopleView, RoomDirectoryView } from "./directory.js";
import { $, pageSeen, prefs, rememberedUser } from "./dom.js";
import { SESSION_EVENTS } from "./events.js";
import { MessagesView } from "./messages.js";
import { Notifier } from "./notifications.js";
import { OnlineView } from "./online.js";
import { MIN_QUERY, SearchView, newSearch, searchRequest } from "./search.js";
import { Roster } from "./roster.js";
import { SidebarView } from "./sidebar.js";
import * as S from "./state.js";

const WHO_EVERY = 60; // seconds: presence events cover shared rooms only, `people` everyone

class App extends Roster {
  constructor() {
    super();
    this.state = S.createState(null);
    this.connection = null;
    this.whoTimer = null;
    this.quietRefs = new Set(); // `join`s that only ask a room's details: no view change
    this.commandRefs = new Map(); // ref -> last id seen, of requests typed as slash commands
    this.firstJoin = null; // the room the first view joins, when there was none to open
    this.search = null; // see search.js
    const actions = {
      startEditing: (conversation, message) => this.startEditing(conversation, message),
      askDelete: (conversation, id) => this.askDelete(conversation, id),
      confirmDelete: (conversation, id, yes) => this.confirmDelete(conversation, id, yes),
      retry: (conversation, ref) => this.retry(conversation, ref),
      editFailed: (conversation, ref) => this.editFailed(conversation, ref),
      dismiss: (conversation, ref) => this.dismiss(conversation, ref),
      files: this.attachments, // attachments.js: a message's files
    };
    this.messages = new MessagesView($("messages"), {
      me: () => this.state.me,
      canDeleteOthers: (conversation) => S.canDeleteOthers(this.state, conversation),
      actions,
    }, () => {
      this.updatePill();
      this.markRead();
    });
    const open = (key) => this.open(key);
    this.sidebar = new SidebarView({ rooms: $("room-list"), dms: $("dm-list"), onOpen: open });
    this.online = new OnlineView($("online-list"), { onOpen: open });
    this.people = new PeopleView({ list: $("people-list"), filter: $("people-filter"), count: $("people-count"), onOpen: open });
    const join = (room) => this.joinRoom(room);
    this.directoryView = new RoomDirectoryView({
      panel: $("directory-view"),
      list: $("directory-list"),
      status: $("directory-status"),
      messages: $("messages"),
      onJoin: join,
      onOpen: (key) => {
        this.directoryView.close();
        open(key);
      },
    });
    this.membersView = new MembersView({ box: $("members"), summary: $("members-summary"), list: $("members-list") });
    this.invitesView = new InvitesView({ heading: $("invites-heading"), list: $("invite-list"), onJoin: join });
    this.searchView = new SearchView({ onOpenResult: (message) => this.openResult(message) });
    this.notifier = new Notifier({ onOpen: open, current: () => this.state.current, me: () => this.state.me });
    this.composer = new ComposerView({
      onSend: () => this.sendComposed(),
      onEditLast: () => this.editLast(),
      onCancelEdit: () => this.stopEditing(true),
      onFiles: (files) => this.uploads.add(files),
    });
    this.devices = new DeviceControl(this);
    this.bind();
    $("login-user").value = rememberedUser.get();
    const signedIn = deviceHint.get();
    if (signedIn) this.connect({ user: signedIn, device: true });
  }

  bind() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.login();
    });
    $("join-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.joinRoom($("join-room").value, { fromForm: true });
    });
    $("create-button").addEventListener("click", () => this.createRoom($("join-room").value, $("create-private").checked));
    $("create-yes").addEventListener("click", () => this.answerCreate(true));
    $("create-no").addEventListener("click", () => this.answerCreate(false));
    $("directory-button").addEventListener("click", () => {
      this.toggleMenu(false);
      this.showDirectory();
    });
    $("directory-close").addEventListener("click", () => this.directoryView.close());
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.startSearch($("search-input").value);
    });
    $("search-more").addEventListener("click", () => {
      if (this.search !== null && this.search.next !== null) this.searchFrom(this.search.next);
    });
    $("search-close").addEventListener("click", () => this.closeSearch());
    $("new-pill").addEventListener("click", () => {
      this.messages.toBottom();
      this.composer.focus();
    });
    $("messages").addEventListener("scroll", () => this.scrolled());
    $("menu-toggle").addEventListener("click", () => this.toggleMenu());
    $("logout-button").addEventListener("click", () => this.logout());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !e.defaultPrevented) this.escape(e);
    });
    document.addEventListener("visibilitychange", () => this.markRead());
    window.addEventListener("focus", () => this.markRead());
  }

  // --- login and the connection ---------------------------------------------------------

  login() {
    const user = $("login-user").value.trim();
    const password = $("login-password").value;
    if (!user || !password) {
      $("login-error").textContent = "Enter your user name and password.";
      return;
    }
    $("login-error").textContent = "";
    this.connect({ user, password, remember: $("login-remember").checked });
  }

  connect(how) {
    $("login-submit").disabled = true;
    const connection = new Connection({
      ...how,
      onEvent: (event) => {
        if (connection === this.connection) (SESSION_EVENTS[event.kind] || (() => {}))(this, event);
      },
      onStatus: (state, text) => {
        if (connection === this.connection) this.setStatus(state, text);
      },
      onUnreachable: () => {
        if (connection === this.connection) this.showLogin("Cannot reach the server. Try again in a moment.");
      },
    });
    this.connection = connection;
    connection.connect();
  }

  loggedIn(welcome, resumed) {
    const state = this.state;
    this.setStatus("online");
    if (resumed) {
      for (const room of [...state.rooms]) if (!welcome.rooms.includes(room)) this.roomGone(room);
    }
    for (const room of welcome.rooms) state.rooms.add(room);
    this.connection.request({ type: "who" });
    this.peoplePages = null;
    this.refreshPeople();
    this.resetRoster();
    this.refreshInvitations(); // after a drop too: those sent meanwhile
    this.refreshUnread(); // after a drop too: the conversations, and what was read elsewhere
    if (resumed) {
      this.sidebar.sync(state);
      const current = state.conversations.get(state.current);
      if (current && !current.loaded) this.loadHistory(current); // cut short by the drop
      if (current && current.kind === "room" && state.rooms.has(current.name)) this.refreshMembers(current.name);
      return;
    }
    state.me = welcome.user;
    rememberedUser.set(state.me);
    this.composer.setLimits(sendLimits(this.connection.session.hello));
    $("login-password").value = "";
    $("login-submit").disabled = false;
    clearInterval(this.whoTimer);
    this.whoTimer = setInterval(() => {
      if (this.connection === null || !this.connection.isReady) return;
      this.connection.request({ type: "who" });
      this.refreshPeople();
    }, WHO_EVERY * 1000);
    $("whoami").textContent = state.me;
    this.sidebar.sync(state);
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    const last = prefs.get(state.me, "last", null);
    const valid = typeof last === "string" && (last.startsWith("dm:") || state.rooms.has(last.slice(5)));
    const first = valid ? last : state.rooms.has(S.DEFAULT_ROOM) ? `room:${S.DEFAULT_ROOM}` : null;
    // Opened with its unread count known, so that it opens at the first unread message.
    this.whenUnreadKnown = () => {
      if (first === null) {
        this.firstJoin = S.DEFAULT_ROOM;
        this.connection.request({ type: "join", room: S.DEFAULT_ROOM });
      } else {
        this.open(first, { behindSearch: true });
      }
    };
    this.composer.focus();
  }

  refused(error, withToken, withDevice = false) {
    let text = error.message;
    if (this.devices.refused(withDevice)) {
      text = "This device is no longer signed in. Enter your password.";
    } else if (error.code === "auth_failed") {
      text = withToken ? "Your session has ended. Log in again." : "Wrong user name or password.";
    } else if (error.code === "rate_limited") {
      text = `Too many failed logins. Try again in ${Math.ceil(error.retry_after || 1)} s.`;
    }
    this.connection.stop();
    this.showLogin(text);
  }

  logout() {
    this.devices.loggedOut();
    if (this.connection !== null) this.connection.close();
    this.showLogin("");
  }

  deviceGranted(grant) {
    this.devices.granted(grant);
  }

  devicesReply(event) {
    this.devices.reply(event);
  }

  showLogin(text) {
    if (this.connection !== null) this.connection.stop();
    this.connection = null;
    clearInterval(this.whoTimer);
    clearTimeout(this.unreadTimer);
    this.quietRefs.clear();
    this.commandRefs.clear();
    this.whenUnreadKnown = null;
    this.firstJoin = null;
    this.unreadPages = null;
    this.unreadAgain = false;
    this.listAsked = "conversations";
    this.peoplePages = null;
    this.directoryPages = null;
    this.askCreate(null);
    this.directoryView.close();
    this.stopEditing(true);
    this.dropTransfers();
    if (this.search !== null) this.closeSearch();
    this.showNotice("");
    $("chat-view").hidden = true;
    $("login-view").hidden = false;
    $("login-submit").disabled = false;
    $("login-error").textContent = text;
    this.state = S.createState(null);
    this.sidebar.clear();
    this.messages.show(null);
    this.online.render(this.state);
    this.people.clear();
    this.membersView.render([]);
    this.invitesView.render(this.state);
    $("login-password").focus();
  }

  setStatus(state, text) {
    const reachable = state === "online" || state === "connecting";
    if (reachable !== this.state.reachable) {
      this.state.reachable = reachable;
      if (!reachable) this.state.online.clear(); // who was online is not known any more
      this.online.render(this.state);
    }
    const status = $("connection-status");
    status.dataset.state = state;
    const labels = { online: "Online", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };
    status.textContent = text || labels[state];
  }

  // --- rooms and DMs in the sidebar ---------------------------------------------------------

  // A conversation newly listed (the server keeps the list: `conversations`).
  listChanged() {
    this.sidebar.sync(this.state);
  }

  sidebarUpdate(key) {
    this.sidebar.update(this.state, key);
    if (key === this.state.current) this.updatePill();
    const total = S.totalUnread(this.state);
    document.title = total > 0 ? `(${total}) securechat` : "securechat";
    $("menu-toggle").textContent = total > 0 ? `Conversations (${total})` : "Conversations";
  }

  // --- search -----------------------------------------------------------------------------------

  startSearch(raw) {
    const query = raw.trim();
    this.toggleMenu(false);
    this.directoryView.close();
    this.searchView.open();
    this.searchView.reset();
    this.search = newSearch(query);
    if (query.length < MIN_QUERY) {
      this.searchView.render(this.search, this.state.me, `Type at least ${MIN_QUERY} characters.`);
      return;
    }
    this.searchFrom(null);
  }

  searchFrom(before) {
    const search = this.search;
    if (search === null || search.loading) return;
    if (!this.connection.isReady) {
      this.searchView.render(search, this.state.me, "Not connected; try again in a moment.");
      return;
    }
    search.loading = true;
    this.connection.request(searchRequest(search, before));
    this.searchView.render(search, this.state.me);
  }

  closeSearch() {
    this.search = null;
    this.searchView.close();
    if (this.openedBehindSearch) {
      // Built while hidden, it could not be scrolled: show it as an opening shows it.
      this.openedBehindSearch = false;
      if (!this.messages.scrollToDivider()) this.messages.toBottom();
    }
    this.markRead();
  }

  openResult(message) {
    this.closeSearch();
    this.open(conversationKey(message, this.state.me));
    this.messages.showFound(message.id); // the window moves there, however far back
  }

  // --- the phone menu and the keyboard ------------------------------------------------------------

  // Whether a message arriving now is seen: its conversation open at the bottom, the page
  // looked at.
  isLooking(message) {
    const current = conversationKey(message, this.state.me) === this.state.current;
    return current && pageSeen() && this.search === null && this.messages.stuck;
  }

  // Escape closes what is in front, one thing at a time: the phone menu, a question (delete
  // this message?), the search results, an edit.
  escape(e) {
    const conversation = this.state.conversations.get(this.state.current);
    if ($("chat-view").classList.contains("menu-open")) {
      this.toggleMenu(false);
      $("menu-toggle").focus();
    } else if (conversation && conversation.confirmDelete !== null) {
      this.confirmDelete(conversation, conversation.confirmDelete, false);
    } else if (this.asking !== null) {
      this.answerCreate(false);
    } else if (this.directoryView.isOpen) {
      this.directoryView.close();
      this.composer.focus();
    } else if (this.search !== null) {
      this.closeSearch();
      this.composer.focus();
    } else if (this.editing !== null) {
      this.stopEditing(true); // the composer itself handles Escape while it has the focus
      this.composer.focus();
    } else {
      return;
    }
    e.preventDefault();
  }

  toggleMenu(open) {
    const chat = $("chat-view");
    const wasOpen = chat.classList.contains("menu-open");
    const isOpen = open === undefined ? !wasOpen : open;
    chat.classList.toggle("menu-open", isOpen);
    $("menu-toggle").setAttribute("aria-expanded", String(isOpen));
    if (isOpen && !wasOpen) {
      // Keyboard users land in the menu they opened, on the conversation they are in: not in
      // the search box, whose keyboard would cover a phone's screen.
      const sidebar = $("sidebar");
      const first = sidebar.querySelector("button[aria-current='true']") || sidebar.querySelector(".conversation-list button");
      if (first) first.focus();
    } else if (!isOpen && wasOpen && $("sidebar").contains(document.activeElement)) {
      this.composer.focus(); // ...and in the composer when a choice there closes it
    }
  }
}

new App();
