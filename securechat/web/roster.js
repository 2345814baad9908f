// Who is in a room and who asks this user in, from the server (#26): a room's members with
// their roles (`members`, paged by name), asked whenever a room opens and after a
// reconnect, and the pending invitations (`invitations`, paged by room), asked at every
// login, so that a reload or another device shows what the live `room_event` invite
// showed. Between Rooms and the App (app.js); the state updates are members.js's.

import { Rooms } from "./rooms.js";
import * as S from "./state.js";

export class Roster extends Rooms {
  constructor() {
    super();
    this.memberPages = new Map(); // room -> members gathered from `members` pages, while paging
    this.invitationPages = null; // invitations gathered from `invitations` pages, while paging
  }

  // After every login: what was asked before a drop will not be answered.
  resetRoster() {
    this.memberPages.clear();
    this.invitationPages = null;
  }

  refreshInvitations() {
    if (this.invitationPages !== null || this.connection === null || !this.connection.isReady) return;
    this.invitationPages = [];
    this.connection.request({ type: "invitations" });
  }

  invitationsPage(event) {
    if (event.type !== "invitations" || this.invitationPages === null) {
      this.invitationPages = null; // a server from before `invitations`: the live ones only
      return;
    }
    this.invitationPages.push(...event.invitations);
    const last = event.invitations.at(-1);
    if (event.more && last !== undefined) {
      this.connection.request({ type: "invitations", after: last.room });
      return;
    }
    S.applyInvitations(this.state, this.invitationPages);
    this.invitationPages = null;
    this.invitesView.render(this.state);
  }

  refreshMembers(room) {
    if (this.memberPages.has(room) || this.connection === null || !this.connection.isReady) return;
    this.memberPages.set(room, []);
    this.connection.request({ type: "members", room });
  }

  membersPage(asked, event) {
    const pages = this.memberPages.get(asked.room);
    if (event.type !== "members" || pages === undefined) {
      this.memberPages.delete(asked.room); // refused (the room went), or an older server
      return;
    }
    pages.push(...event.members);
    const last = event.members.at(-1);
    if (event.more && last !== undefined) {
      this.connection.request({ type: "members", room: asked.room, after: last.name });
      return;
    }
    this.memberPages.delete(asked.room);
    S.applyMembers(this.state, asked.room, pages);
    if (this.state.current === `room:${asked.room}`) this.renderMembers();
  }
}
