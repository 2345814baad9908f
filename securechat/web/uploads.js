// The composer's attachments (issue 27): files picked with the attach button, dropped on
// the conversation or pasted (a screenshot) start uploading at once, each shown in the tray
// above the composer with its progress and a Cancel button; a refused one says why and, if
// a retry can help, offers Retry. The next send carries every finished one, with the
// composer's text as the caption. The steps are files.js's UPLOAD_STEPS; the bytes go
// through transfers.js.

import { button, el } from "./dom.js";
import { MAX_FILES, advance, canRetry, formatSize, newUpload, progressText, readyToSend, sizeRefusal } from "./files.js";
import { upload as post } from "./transfers.js";

export class Uploads {
  // askTicket(request) -> Promise of the reply event; onError(text): shown by the composer;
  // hello(): the server's hello (its limits), or null.
  constructor({ tray, askTicket, onError, hello }) {
    this.tray = tray;
    this.hello = hello;
    this.askTicket = askTicket;
    this.onError = onError;
    this.list = []; // uploads (files.js), in the order added
    this.blobs = new Map(); // upload key -> the File, for retries
    this.aborts = new Map(); // upload key -> abort() of its request in flight
  }

  // Files picked, dropped or pasted.
  add(files) {
    for (const file of files) {
      if (this.active().length >= MAX_FILES) {
        this.onError(`A message carries at most ${MAX_FILES} files: send these first.`);
        return;
      }
      const upload = newUpload(file);
      this.list.push(upload);
      this.blobs.set(upload.key, file);
      this.start(upload);
    }
    this.render();
  }

  // Files already uploaded (a failed send taken back to be edited): ready to send again.
  restore(files) {
    for (const file of files) {
      const upload = newUpload(file);
      advance(upload, { kind: "ticket" });
      advance(upload, { kind: "stored", file });
      this.list.push(upload);
    }
    this.render();
  }

  active() {
    return this.list.filter((u) => u.status !== "cancelled" && u.status !== "sent");
  }

  // What the next send carries: { busy, files } (files.js readyToSend).
  ready() {
    return readyToSend(this.active());
  }

  // The finished uploads went with a send: they leave the tray.
  sent() {
    for (const upload of this.list) advance(upload, { kind: "sent" });
    this.prune();
  }

  async start(upload) {
    const refused = sizeRefusal(upload.size, this.hello());
    if (refused !== null) {
      this.step(upload, refused);
      return;
    }
    const reply = await this.askTicket({ type: "file_ticket", name: upload.name, size: upload.size });
    if (reply.type !== "file_ticket") {
      this.step(upload, { kind: "refused", code: reply.code, message: reply.message });
      return;
    }
    if (!this.step(upload, { kind: "ticket" })) return; // cancelled while asking
    const request = post(reply, this.blobs.get(upload.key), (sent) => this.step(upload, { kind: "progress", sent }));
    this.aborts.set(upload.key, request.abort);
    try {
      const file = await request.done;
      this.step(upload, { kind: "stored", file });
    } catch (error) {
      this.step(upload, { kind: "refused", code: error.code, message: error.message });
    } finally {
      this.aborts.delete(upload.key);
    }
  }

  step(upload, event) {
    if (!advance(upload, event)) return false;
    if (event.kind === "progress") this.progress(upload);
    else this.render();
    return true;
  }

  cancel(upload) {
    const abort = this.aborts.get(upload.key);
    advance(upload, { kind: "cancel" });
    if (abort !== undefined) abort();
    this.prune();
  }

  retry(upload) {
    if (advance(upload, { kind: "retry" })) this.start(upload);
    this.render();
  }

  // Every upload dropped (logged out).
  clear() {
    for (const upload of this.list) this.cancel(upload);
    this.prune();
  }

  prune() {
    this.list = this.list.filter((u) => {
      const gone = u.status === "cancelled" || u.status === "sent";
      if (gone) this.blobs.delete(u.key);
      return !gone;
    });
    this.render();
  }

  progress(upload) {
    const node = this.tray.querySelector(`[data-upload="${upload.key}"] progress`);
    if (node === null) return;
    node.value = upload.sent;
    node.nextSibling.textContent = progressText(upload);
  }

  render() {
    this.tray.replaceChildren(...this.list.map((u) => this.item(u)));
    this.tray.hidden = this.list.length === 0;
  }

  item(upload) {
    const what = `${upload.name} (${formatSize(upload.size)})`;
    const node = el("li", { className: "upload", dataset: { upload: upload.key, status: upload.status } }, el("span", { className: "file-name" }, what));
    if (upload.status === "ticket" || upload.status === "uploading") {
      node.append(
        el("progress", { attrs: { max: Math.max(upload.size, 1), value: upload.sent, "aria-label": `Uploading ${upload.name}` } }),
        el("span", { className: "upload-progress" }, progressText(upload)),
      );
    } else if (upload.status === "done") {
      node.append(el("span", { className: "upload-done" }, "ready to send"));
    } else if (upload.status === "failed") {
      node.append(el("span", { className: "upload-error", attrs: { role: "alert" } }, `Not uploaded: ${upload.reason}`));
      if (canRetry(upload)) node.append(button("Retry", () => this.retry(upload), { className: "quiet small", attrs: { "aria-label": `Retry ${upload.name}` } }));
    }
    const label = upload.status === "failed" || upload.status === "done" ? "Remove" : "Cancel";
    node.append(button(label, () => this.cancel(upload), { className: "quiet small", attrs: { "aria-label": `${label} ${upload.name}` } }));
    return node;
  }
}
