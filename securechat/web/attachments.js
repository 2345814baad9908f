// A message's files in the timeline (issue 27): an image the server previews shows inline
// (its thumbnail, `alt` = its name) and opens the full image on click; any other file is a
// card with its name, size and type and a Download button. Built with el() only.
//
// Previews are fetched lazily, when their item comes into view, with a one-use ticket, into
// a blob: URL (the page's CSP allows images from 'self' and blob: only). One URL per file,
// shared by every node that shows it (an edit rebuilds the item; the thumbnail stays), and
// revoked once no node showing it is in the page any more: items leave when the timeline
// is rebuilt, windowed or another conversation opens, and the sweep after each change of
// the list finds them gone.

import { button, el } from "./dom.js";
import { formatSize, hasPreview } from "./files.js";
import { download, save } from "./transfers.js";

const THUMBNAIL_TRIES = [500, 1500, 4000]; // ms: a thumbnail may still be being made

export class Attachments {
  // askTicket(request) -> Promise of the reply event (a file_ticket, or an error).
  constructor(askTicket) {
    this.askTicket = askTicket;
    this.previews = new Map(); // file id -> { url: Promise<string|null>, nodes: Set<img> }
    this.sending = new Map(); // ref of a send not yet acknowledged -> its files' objects
    this.observer = new IntersectionObserver((entries) => this.inView(entries), { rootMargin: "200px" });
    this.waiting = new Set(); // <img>s observed, not yet in view
    this.sweepQueued = false;
    this.viewer = null;
  }

  // The files of `message` as one node, or null (none, or deleted).
  render(message) {
    if (message.deleted || !Array.isArray(message.files) || message.files.length === 0) return null;
    return el("div", { className: "attachments" }, ...message.files.map((file) => (hasPreview(file) ? this.image(file) : this.card(file))));
  }

  // The files of a send still on its way (or failed), by name: nothing to fetch yet.
  renderSending(ref) {
    const files = this.sending.get(ref);
    if (files === undefined) return null;
    const names = files.map((file) => el("span", { className: "attachment sending" }, `${file.name} (${formatSize(file.size)})`));
    return el("div", { className: "attachments" }, ...names);
  }

  image(file) {
    const img = el("img", { className: "preview", attrs: { alt: file.name, title: `${file.name} (${formatSize(file.size)})` } });
    if (Number.isInteger(file.width) && Number.isInteger(file.height)) img.style.aspectRatio = `${file.width} / ${file.height}`;
    img.dataset.file = file.id;
    const open = el("button", { className: "preview-button", attrs: { type: "button", "aria-label": `Open ${file.name}` } }, img);
    open.addEventListener("click", () => this.open(file));
    const entry = this.previews.get(file.id);
    if (entry !== undefined) this.show(img, entry);
    else {
      this.waiting.add(img);
      this.observer.observe(img);
    }
    return el("figure", { className: "attachment image" }, open, this.fallback(file));
  }

  // Shown instead of the image when there is no preview after all: the file's card.
  fallback(file) {
    const card = this.card(file);
    card.hidden = true;
    return card;
  }

  card(file) {
    const status = el("span", { className: "file-status", attrs: { role: "status" } });
    const save = button("Download", () => this.save(file, status), { className: "small", attrs: { "aria-label": `Download ${file.name}` } });
    return el(
      "div",
      { className: "attachment file", dataset: { file: file.id } },
      el("span", { className: "file-name" }, file.name),
      el("span", { className: "file-meta" }, `${formatSize(file.size)} · ${file.type || "unknown type"}`),
      save,
      status,
    );
  }

  inView(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const img = entry.target;
      this.observer.unobserve(img);
      this.waiting.delete(img);
      const id = img.dataset.file;
      let preview = this.previews.get(id);
      if (preview === undefined) {
        preview = { url: this.thumbnail(id), nodes: new Set() };
        this.previews.set(id, preview);
      }
      this.show(img, preview);
    }
  }

  show(img, preview) {
    preview.nodes.add(img);
    preview.url.then((url) => {
      if (url !== null) {
        img.src = url;
        return;
      }
      const figure = img.closest("figure"); // no preview after all: its card shows instead
      figure.querySelector(".attachment.file").hidden = false;
      img.parentElement.hidden = true;
    });
  }

  // A blob: URL of the thumbnail of file `id`, or null when there is none.
  async thumbnail(id) {
    for (let attempt = 0; ; attempt += 1) {
      const ticket = await this.askTicket({ type: "file_ticket", file: id, thumbnail: true });
      if (ticket.type === "file_ticket") {
        try {
          return URL.createObjectURL(await download(ticket));
        } catch {
          return null; // gone meanwhile, or the connection broke: the card stays usable
        }
      }
      if (ticket.code !== "no_such_file" || attempt >= THUMBNAIL_TRIES.length) return null;
      await new Promise((resolve) => setTimeout(resolve, THUMBNAIL_TRIES[attempt]));
    }
  }

  // After the timeline changed: the previews no node shows any more are revoked.
  sweep() {
    if (this.sweepQueued) return;
    this.sweepQueued = true;
    requestAnimationFrame(() => {
      this.sweepQueued = false;
      for (const img of this.waiting) {
        if (img.isConnected) continue;
        this.observer.unobserve(img);
        this.waiting.delete(img);
      }
      for (const [id, preview] of this.previews) {
        for (const node of preview.nodes) if (!node.isConnected) preview.nodes.delete(node);
        if (preview.nodes.size > 0) continue;
        this.previews.delete(id);
        preview.url.then((url) => url !== null && URL.revokeObjectURL(url));
      }
    });
  }

  // Watches `list` (the timeline) for items leaving.
  watch(list) {
    new MutationObserver(() => this.sweep()).observe(list, { childList: true, subtree: true });
  }

  async fetchFile(file, status) {
    status.textContent = "Downloading…";
    const ticket = await this.askTicket({ type: "file_ticket", file: file.id });
    if (ticket.type !== "file_ticket") {
      status.textContent = `Cannot download: ${ticket.message}`;
      return null;
    }
    try {
      const blob = await download(ticket);
      status.textContent = "";
      return blob;
    } catch (error) {
      status.textContent = `Cannot download: ${error.message}`;
      return null;
    }
  }

  async save(file, status) {
    const blob = await this.fetchFile(file, status);
    if (blob !== null) save(blob, file.name);
  }

  // The full image over the page, with a close button (Escape closes it too).
  async open(file) {
    const status = el("p", { className: "file-status", attrs: { role: "status" } });
    const close = button("Close", () => this.close(), { className: "quiet" });
    const dialog = el("dialog", { className: "image-viewer", attrs: { "aria-label": file.name } }, el("div", { className: "viewer-head" }, el("span", {}, file.name), button("Download", () => this.save(file, status), { className: "small", attrs: { "aria-label": `Download ${file.name}` } }), close), status);
    this.close();
    document.body.append(dialog);
    dialog.addEventListener("close", () => this.close());
    dialog.addEventListener("keydown", (e) => {
      if (e.key === "Escape") e.stopPropagation(); // closes the viewer only, not an edit behind it
    });
    dialog.showModal();
    this.viewer = { dialog, url: null };
    const viewer = this.viewer;
    const blob = await this.fetchFile(file, status);
    if (blob === null || this.viewer !== viewer) return;
    viewer.url = URL.createObjectURL(blob);
    dialog.append(el("img", { className: "full-image", attrs: { alt: file.name, src: viewer.url } }));
  }

  close() {
    const viewer = this.viewer;
    if (viewer === null) return;
    this.viewer = null;
    if (viewer.url !== null) URL.revokeObjectURL(viewer.url);
    if (viewer.dialog.open) viewer.dialog.close();
    viewer.dialog.remove();
  }
}
