// Desktop notifications: asked for only on a click ("Enable notifications"), then shown for
// direct messages and @mentions unless their conversation is in view on a visible page.

import { mentions } from "./chat.js";
import { $ } from "./dom.js";

export class Notifier {
  // onOpen(key): a notification was clicked; current(), me(): the open conversation, the user.
  constructor({ onOpen, current, me }) {
    this.onOpen = onOpen;
    this.current = current;
    this.me = me;
    $("notify-button").addEventListener("click", () => this.ask());
    this.updateButton();
  }

  get allowed() {
    return "Notification" in window && Notification.permission === "granted";
  }

  updateButton() {
    $("notify-button").hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  ask() {
    if (!("Notification" in window)) return;
    Notification.requestPermission().then(() => this.updateButton());
  }

  notify(message, key) {
    if (!this.allowed) return;
    const me = this.me();
    if (message.from === me) return;
    const direct = message.to !== undefined;
    if (!direct && !mentions(message.body, me, true)) return; // it came live: @here too
    if (key === this.current() && document.visibilityState === "visible") return;
    const title = direct ? message.from : `${message.from} in #${message.room}`;
    const notification = new Notification(title, { body: message.body.slice(0, 200), tag: key });
    notification.addEventListener("click", () => {
      window.focus();
      this.onOpen(key);
    });
  }
}
