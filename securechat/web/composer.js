// The composer: its text, the edit bar, its error line, and its keys (Enter sends,
// Shift+Enter is a new line, ArrowUp in an empty box edits the last own message, Escape
// leaves editing).

import { $ } from "./dom.js";

export class ComposerView {
  // onSend(): the text is to be sent; onEditLast(): ArrowUp in an empty box;
  // onCancelEdit(): Escape or Cancel while editing.
  constructor({ onSend, onEditLast, onCancelEdit }) {
    this.input = $("composer-input");
    this.editing = false;
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      onSend();
    });
    $("edit-cancel").addEventListener("click", () => onCancelEdit());
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
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

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
  }

  focus() {
    this.input.focus();
  }

  // Editing `body`: the text in the box, the cursor at its end, the bar shown.
  startEditing(body) {
    this.editing = true;
    this.input.value = body;
    $("edit-bar").hidden = false;
    this.input.focus();
    this.input.setSelectionRange(body.length, body.length);
  }

  stopEditing(clear) {
    this.editing = false;
    $("edit-bar").hidden = true;
    if (clear) this.input.value = "";
  }

  error(text) {
    $("composer-error").textContent = text;
  }
}
