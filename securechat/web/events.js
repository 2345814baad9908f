// The event table: one small handler per thing the session reports, per reply (by what was
// asked) and per pushed event type. Each takes the page (app.js) and the event, updates the
// state through state.js and tells the views what changed.

import { roomEventText } from "./chat.js";
import * as S from "./state.js";
import { addSearchPage } from "./search.js";

// What the session reports (session.js's event kinds).
export const SESSION_EVENTS = {
  logged_in: (app, { welcome, resumed }) => app.loggedIn(welcome, resumed),
  refused: (app, { error, withToken, withDevice }) => app.refused(error, withToken, withDevice),
  message: (app, { message }) => received(app, message),
  delivered: (app, { ref, message }) => {
    app.sentWithFiles(ref, message);
    const where = S.deliver(app.state, ref, message);
    app.sidebarUpdate(where.key); // its last activity
    app.messages.pending(where, ref);
    app.messages.upsert(where, message.id);
  },
  send_failed: (app, event) => {
    app.sendFailed(S.failSend(app.state, event), event.ref);
  },
  reply: (app, { ref, asked, event }) => reply(app, ref, asked, event),
  pushed: (app, { event }) => (PUSHED[event.type] || ignore)(app, event),
  ended: ignore, // the driver closes the socket
  caught_up: ignore,
};

function ignore() {}

function received(app, message) {
  const { state } = app;
  const seen = app.isLooking(message);
  const { conversation, listed } = S.receiveMessage(state, message, { seen });
  if (listed) app.listChanged(conversation);
  app.notifier.notify(message, conversation.key);
  app.sidebarUpdate(conversation.key);
  app.messages.upsert(conversation, message.id);
  if (conversation.key === state.current) app.markReadSoon();
}

function reply(app, ref, asked, event) {
  const seenBefore = app.commandRefs.get(ref);
  const command = app.commandRefs.delete(ref);
  const quiet = app.quietRefs.delete(ref);
  if (event.type === "error" && command) {
    app.composer.error(event.message);
    return;
  }
  const handler = REPLIES[asked.type];
  if (handler !== undefined) handler(app, asked, event, { quiet, command, seenBefore, ref });
}

// Replies, by the type of the request they answer.
export const REPLIES = {
  history: (app, asked, event) => app.historyPage(asked, event),
  join: (app, asked, event, how) => app.joinedReply(asked, event, how),
  create: (app, asked, event, how) => app.joinedReply(asked, event, how),
  leave: (app, asked, event) => {
    if (event.type === "left") app.roomGone(event.room);
  },
  who: (app, asked, event) => {
    if (event.type !== "who") return;
    app.state.online = new Set(event.online);
    for (const [name, person] of app.state.people) person.online = app.state.online.has(name);
    app.presenceChanged();
  },
  unread: (app, asked, event) => app.unreadPage(event),
  conversations: (app, asked, event) => app.unreadPage(event),
  people: (app, asked, event) => app.peoplePage(event),
  members: (app, asked, event) => app.membersPage(asked, event),
  invitations: (app, asked, event) => app.invitationsPage(event),
  rooms: (app, asked, event) => app.roomsPage(event),
  read: (app, asked, event) => {
    if (event.type === "read") PUSHED.read(app, event);
  },
  edit: (app, asked, event) => changed(app, asked, event),
  delete: (app, asked, event) => changed(app, asked, event),
  search: (app, asked, event) => {
    const search = app.search;
    if (search === null || asked.query !== search.query) return; // a search since replaced
    if (event.type !== "search") {
      search.loading = false;
      app.searchView.render(search, app.state.me, event.message);
      return;
    }
    addSearchPage(search, event);
    app.searchView.render(search, app.state.me);
  },
  devices: (app, asked, event) => app.devicesReply(event),
  file_ticket: (app, asked, event, { ref }) => app.ticketReply(ref, event),
  device_signout: (app, asked, event) => app.devicesReply(event),
  moderate: (app, asked, event, { seenBefore }) => {
    // The server tells the room but not the session that acted: the event is in the
    // journal, so a sync from before the command brings it (what else it brings was seen).
    if (event.type === "done" && seenBefore !== undefined) {
      app.connection.request({ type: "sync", since: seenBefore });
    }
  },
};

// Our own edit or deletion was acknowledged: show it as the other sessions will.
function changed(app, asked, event) {
  if (event.type !== "ack") {
    app.composer.error(event.message);
    return;
  }
  const change = asked.type === "edit" ? { body: asked.body, edited: event.ts } : { body: "", deleted: true };
  app.messageChanged(asked.id, change);
}

// Pushed events, by type.
export const PUSHED = {
  presence: (app, event) => {
    // One user's change, as servers before #30 announced it; the page's own server batches.
    S.applyPresence(app.state, event.user, event.online, new Date().toISOString());
    app.presenceChanged();
  },
  presence_batch: (app, event) => {
    S.applyPresenceBatch(app.state, event, new Date().toISOString());
    app.presenceChanged(); // once for the whole batch: a login storm redraws once a flush
  },
  member_joined: (app, event) => {
    if (S.memberChanged(app.state, event.room, event.user, true)) app.renderMembers();
    // This user joined in another session (the terminal client, another tab).
    if (event.user !== app.state.me) return;
    app.state.rooms.add(event.room);
    app.state.invites.delete(event.room);
    app.invitesView.render(app.state);
    app.sidebar.sync(app.state);
  },
  member_left: (app, event) => {
    if (S.memberChanged(app.state, event.room, event.user, false)) app.renderMembers();
    if (event.user === app.state.me) app.roomGone(event.room);
  },
  left: (app, event) => app.roomGone(event.room), // kicked, banned, or the room was deleted
  room_event: (app, event) => {
    const where = S.applyRoomEvent(app.state, event, roomEventText(event, app.state.me));
    app.invitesView.render(app.state); // an invitation, or one gone with its room
    if (where === null) return;
    if (where.key === app.state.current) {
      app.renderHeader();
      app.renderMembers();
    }
    app.messages.upsert(where, event.id);
    app.sidebar.sync(app.state);
    if (event.user === app.state.me && (event.action === "op" || event.action === "deop" || event.action === "transfer")) {
      if (where.key === app.state.current) app.messages.rebuild(); // Delete buttons on others' messages
    }
  },
  edited: (app, event) => app.messageChanged(event.target, { body: event.body, edited: event.ts }),
  deleted: (app, event) => app.messageChanged(event.target, { body: "", deleted: true }),
  read: (app, event) => {
    const { conversation, settled } = S.readMarker(app.state, event);
    if (!settled) app.refreshUnreadSoon(); // only the server knows what is left unread
    app.sidebarUpdate(conversation.key);
  },
  device_grant: (app, event) => app.deviceGranted(event.grant),
  error: (app, event) => app.setStatus(app.connection.isReady ? "online" : "offline", event.message),
};
