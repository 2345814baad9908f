// The driver: one ChatSession over the page's WebSocket, its ticks and its reconnects.
//
// It owns the socket and the timers and nothing else: each event the session reports goes to
// `onEvent` (the event table), status changes to `onStatus`. Events may queue requests;
// requests never make events by themselves, so one pump after each input suffices.

import { ChatSession, reconnectDelay } from "./session.js";

const now = () => performance.now() / 1000;

function randomPrefix() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return "w" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  // onEvent(event), onStatus(state, text), onUnreachable(): the server could not be reached
  // before the first login.
  constructor({ user, password = null, remember = false, device = false, onEvent, onStatus, onUnreachable }) {
    this.session = new ChatSession({ user, password, remember, device, sendPrefix: randomPrefix() });
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onUnreachable = onUnreachable;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false; // no reconnecting: logged out, refused
    this.reconnectTimer = null;
    this.tickTimer = null;
  }

  get isReady() {
    return this.session.isReady;
  }

  // A request (answered by a reply event); returns its ref.
  request(message) {
    const ref = this.session.request(message);
    this.pump();
    return ref;
  }

  submit(body, target, files = []) {
    const send = this.session.submit(body, target, files);
    this.pump();
    return send;
  }

  connect() {
    this.reconnectTimer = null;
    this.onStatus(this.session.logins > 0 ? "reconnecting" : "connecting");
    const ws = new WebSocket(`wss://${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.session.connectionMade(now());
      this.pump();
    });
    ws.addEventListener("message", (e) => {
      if (ws !== this.ws || typeof e.data !== "string") return;
      this.session.receive(e.data, now());
      this.pump();
    });
    ws.addEventListener("close", () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.session.connectionLost("connection closed");
      this.pump();
      this.afterClose();
    });
  }

  pump() {
    if (this.stopped && this.session.state === "closed") return;
    for (const event of this.session.takeEvents()) {
      if (event.kind === "ended" && this.ws !== null) this.ws.close(1000);
      else if (event.kind === "logged_in") this.attempt = 0;
      this.onEvent(event);
    }
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      for (const text of this.session.takeOutgoing()) ws.send(text);
    }
    clearTimeout(this.tickTimer);
    const due = this.session.nextDeadline();
    if (due !== null) {
      this.tickTimer = setTimeout(() => {
        this.session.tick(now());
        this.pump();
      }, Math.max(0, (due - now()) * 1000) + 10);
    }
  }

  afterClose() {
    clearTimeout(this.tickTimer);
    if (this.stopped) return;
    if (this.session.logins === 0) {
      this.stopped = true;
      this.onUnreachable();
      return;
    }
    const delay = reconnectDelay(this.attempt);
    this.attempt += 1;
    this.onStatus("reconnecting", `Reconnecting in ${delay.toFixed(1)} s…`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay * 1000);
  }

  // Refused: no more reconnects, the socket closes as the session ended it.
  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
  }

  // Log out: bye, then close; the server revokes the token on bye.
  close() {
    this.stop();
    clearTimeout(this.tickTimer);
    this.session.close();
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      for (const text of this.session.takeOutgoing()) ws.send(text);
      ws.close(1000);
    }
    this.ws = null;
  }
}
