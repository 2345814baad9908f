// Search: the request pages (state kept here, pure of the DOM) and the results view.

import { conversationKey } from "./chat.js";
import { $, el } from "./dom.js";
import { timeOf } from "./messageitem.js";

export const SEARCH_PAGE = 20;
export const MIN_QUERY = 3;

export function newSearch(query) {
  return { query, results: [], more: false, loading: false, next: null };
}

// The next request of `search`, older than `before` (null: the newest).
export function searchRequest(search, before) {
  const request = { type: "search", query: search.query, limit: SEARCH_PAGE };
  if (before !== null) request.before = before;
  return request;
}

// A reply page into `search`. Where to go on: the server says (older than the last result
// when its work limit for one search ended the page early, with "cut").
export function addSearchPage(search, event) {
  search.loading = false;
  search.results.push(...event.messages);
  search.more = event.more;
  const last = event.messages.length > 0 ? event.messages[event.messages.length - 1].id : null;
  search.next = event.next_before ?? last;
}

export function searchStatus(search) {
  const { query, results, more } = search;
  if (search.loading) return `Searching for “${query}”…`;
  if (results.length === 0 && more) return `Nothing found for “${query}” in the newest messages; older ones may hold it.`;
  if (results.length === 0) return `Nothing found for “${query}”.`;
  return `${results.length}${more ? "+" : ""} found for “${query}”, newest first.`;
}

export class SearchView {
  // onOpenResult(message): a result was chosen.
  constructor({ onOpenResult }) {
    this.onOpenResult = onOpenResult;
  }

  get isOpen() {
    return !$("search-view").hidden;
  }

  open() {
    $("search-view").hidden = false;
    $("messages").hidden = true;
  }

  close() {
    $("search-view").hidden = true;
    $("messages").hidden = false;
  }

  reset() {
    $("search-results").replaceChildren();
  }

  render(search, me, status = null) {
    $("search-status").textContent = status === null ? searchStatus(search) : status;
    const list = $("search-results");
    // Results only grow (a new search starts from reset()): add what is not shown yet.
    for (const message of search.results.slice(list.childElementCount)) list.append(this.item(message, me));
    $("search-more").hidden = !search.more || search.loading;
  }

  item(message, me) {
    const key = conversationKey(message, me);
    const label = message.room !== undefined && message.room !== null ? `#${message.room}` : `DM with ${key.slice(3)}`;
    const node = el(
      "button",
      { className: "result", attrs: { type: "button" }, dataset: { id: message.id, key } },
      el("span", { className: "meta" }, el("span", { className: "where" }, label), el("span", { className: "from" }, message.from), timeOf(message.ts, true)),
      el("span", { className: "body" }, message.body),
    );
    node.addEventListener("click", () => this.onOpenResult(message));
    return el("li", {}, node);
  }
}
