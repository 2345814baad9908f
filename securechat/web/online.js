// Who is online (from `who` and presence events), each a button that opens a DM; while the
// server cannot be reached the list says so instead of showing who was online before.

import { el } from "./dom.js";

export class OnlineView {
  constructor(list, { onOpen }) {
    this.list = list;
    this.onOpen = onOpen;
  }

  render(state) {
    if (!state.reachable) {
      this.list.replaceChildren(el("li", { className: "unreachable" }, "The server cannot be reached right now."));
      return;
    }
    const others = [...state.online].filter((user) => user !== state.me).sort();
    this.list.replaceChildren(
      ...others.map((user) => {
        const node = el(
          "button",
          { attrs: { type: "button", title: `Message ${user}` }, dataset: { user } },
          el("span", { className: "dot", attrs: { "aria-hidden": "true" } }, "●"),
          user,
        );
        node.addEventListener("click", () => this.onOpen(`dm:${user}`));
        return el("li", {}, node);
      }),
    );
  }
}
