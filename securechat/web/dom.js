// The page's only ways to make DOM nodes from data: strings become text nodes, never markup
// (tests/test_web_session_js.py forbids the markup sinks in every script).

export const $ = (id) => document.getElementById(id);

// An element with text children: strings become text nodes, never markup.
export function el(tag, { className, attrs = {}, dataset = {} } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const [name, value] of Object.entries(dataset)) node.dataset[name] = String(value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// A button that calls `action` when clicked.
export function button(label, action, { className, attrs = {}, dataset = {} } = {}) {
  const node = el("button", { className, attrs: { type: "button", ...attrs }, dataset }, label);
  node.addEventListener("click", action);
  return node;
}

// Per-user view preferences kept on this device: which conversation was open last. Never
// the token, the password or the conversation list (which the server keeps).
export const prefs = {
  get(user, name, fallback) {
    try {
      const raw = localStorage.getItem(`securechat.${name}.${user}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback; // storage disabled, or a value this version cannot read
    }
  },
  set(user, name, value) {
    try {
      localStorage.setItem(`securechat.${name}.${user}`, JSON.stringify(value));
    } catch {
      // storage full or disabled: the preference is simply not remembered
    }
  },
};

// The user name last logged in with on this device: the one thing the page remembers
// across reloads (never the password or the token).
export const rememberedUser = {
  get() {
    try {
      return localStorage.getItem("securechat.user") || "";
    } catch {
      return ""; // storage disabled: nothing remembered
    }
  },
  set(name) {
    try {
      localStorage.setItem("securechat.user", name);
    } catch {
      // storage full or disabled: the name is simply not remembered
    }
  },
};

// Whether the user can be taken to be looking at the page: read markers move only then.
export function pageSeen() {
  return document.visibilityState === "visible" && document.hasFocus();
}
