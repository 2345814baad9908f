// The composer: its text, the edit bar, its error line, its counter near the size limit,
// and its keys. Enter sends and Shift+Enter is a new line; on a narrow screen (a phone's
// keyboard has no Shift+Enter) Enter is a new line and the Send button sends. ArrowUp in
// an empty box edits the last own message, Escape leaves editing. The box grows with its
// text up to a cap, then scrolls. Files come in through the attach button, a drop on the
// conversation or the composer, or a paste of an image (a screenshot): they go to onFiles.

import { checkDraft, counterText, sendLimits } from "./drafts.js";
import { $ } from "./dom.js";

const NARROW = "(max-width: 720px)"; // as the stylesheet's phone layout
const GROW_CAP = 0.4; // the box grows to this share of the window's height

export class ComposerView {
  // onSend(): the text is to be sent; onEditLast(): ArrowUp in an empty box (true: it
  // edits); onCancelEdit(): Escape or Cancel while editing; onFiles(files): files to upload.
  constructor({ onSend, onEditLast, onCancelEdit, onFiles }) {
    this.input = $("composer-input");
    this.counter = $("composer-counter");
    this.editing = false;
    this.limits = sendLimits(null);
    this.target = { room: "" };
    this.narrow = window.matchMedia(NARROW);
    this.narrow.addEventListener("change", () => this.placeholder());
    this.placeholder();
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      onSend();
    });
    $("edit-cancel").addEventListener("click", () => onCancelEdit());
    this.takeFiles(onFiles);
    this.input.addEventListener("input", () => this.changed());
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !this.narrow.matches) {
        e.preventDefault();
        onSend();
      } else if (e.key === "ArrowUp" && this.input.value === "" && !this.editing) {
        if (onEditLast()) e.preventDefault();
      } else if (e.key === "Escape" && this.editing) {
        e.preventDefault();
        e.stopPropagation();
        onCancelEdit();
      }
    });
  }

  takeFiles(onFiles) {
    const picker = $("attach-input");
    $("attach-button").addEventListener("click", () => picker.click());
    picker.addEventListener("change", () => {
      onFiles([...picker.files]);
      picker.value = ""; // the same file may be picked again
      this.focus();
    });
    this.input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])];
      if (files.length === 0) return; // text: pasted as usual
      e.preventDefault();
      onFiles(files.map(pastedName));
    });
    for (const target of [$("messages"), $("composer")]) {
      target.addEventListener("dragover", (e) => {
        if (!e.dataTransfer || !e.dataTransfer.types.includes("Files")) return;
        e.preventDefault(); // allows the drop
        e.dataTransfer.dropEffect = "copy";
        target.classList.add("drop-target");
      });
      target.addEventListener("dragleave", () => target.classList.remove("drop-target"));
      target.addEventListener("drop", (e) => {
        target.classList.remove("drop-target");
        if (!e.dataTransfer || e.dataTransfer.files.length === 0) return;
        e.preventDefault(); // else the browser would open the file in place of the page
        onFiles([...e.dataTransfer.files]);
        this.focus();
      });
    }
  }

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
    this.changed();
  }

  focus() {
    this.input.focus();
  }

  // The server's limits (from its hello) and where the text would go.
  setLimits(limits) {
    this.limits = limits;
    this.changed();
  }

  setTarget(target) {
    this.target = target;
    this.changed();
  }

  // How the text stands against the limits (drafts.js).
  check(body = this.input.value) {
    return checkDraft(body, this.target, this.limits);
  }

  changed() {
    const check = this.check();
    this.counter.hidden = !check.near;
    this.counter.textContent = check.near ? counterText(check) : "";
    this.counter.classList.toggle("over", check.over);
    this.grow();
  }

  grow() {
    const input = this.input;
    input.style.height = "auto";
    const cap = Math.round(window.innerHeight * GROW_CAP);
    input.style.height = `${Math.min(input.scrollHeight + 2, cap)}px`;
  }

  placeholder() {
    this.input.placeholder = this.narrow.matches
      ? "Message (Send button sends)"
      : "Message (Enter sends, Shift+Enter for a new line)";
  }

  // Editing `body`: the text in the box, the cursor at its end, the bar shown.
  startEditing(body) {
    this.editing = true;
    this.value = body;
    $("edit-bar").hidden = false;
    this.input.focus();
    this.input.setSelectionRange(body.length, body.length);
  }

  stopEditing(clear) {
    this.editing = false;
    $("edit-bar").hidden = true;
    if (clear) this.value = "";
  }

  error(text) {
    $("composer-error").textContent = text;
  }
}

// A pasted screenshot comes as "image.png": named after when it was pasted instead.
function pastedName(file) {
  if (file.name && file.name !== "image.png") return file;
  const when = new Date().toISOString().slice(0, 19).replace("T", " ").replaceAll(":", ".");
  const type = file.type || "image/png";
  const extension = type.startsWith("image/") ? type.slice(6).replace("jpeg", "jpg") : "bin";
  return new File([file], `Screenshot ${when}.${extension}`, { type });
}
