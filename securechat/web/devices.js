// "Stay signed in on this device" (#26, docs/protocol.md "Devices").
//
// The credential is an HttpOnly cookie: this page never sees it. After a password login with
// "remember", the server sends a single-use `device_grant`; `trade()` POSTs it to
// /ws/device, whose answer sets the cookie. `deviceHint` (localStorage) holds only the user
// name this browser stays signed in as, so that a reload knows to log in with `device`; it
// is no secret (without the cookie it signs nobody in). DevicesView is "Your devices".

import { $, button, el } from "./dom.js";

const HINT = "securechat.device";

export const deviceHint = {
  get() {
    try {
      return localStorage.getItem(HINT) || "";
    } catch {
      return "";
    }
  },
  set(name) {
    try {
      if (name) localStorage.setItem(HINT, name);
      else localStorage.removeItem(HINT);
    } catch {
      // storage disabled: the next load asks for the password
    }
  },
};

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body,
  });
  return response.status === 204;
}

// Trade a grant for the device cookie; true once this browser stays signed in.
export async function trade(grant, user) {
  try {
    if (!(await post("/ws/device", JSON.stringify({ grant })))) return false;
  } catch {
    return false;
  }
  deviceHint.set(user);
  return true;
}

// Sign this browser out: the server deletes its device and clears the cookie.
export async function forget() {
  deviceHint.set("");
  try {
    await post("/ws/device/forget", "{}");
  } catch {
    // unreachable: the cookie stays until the device is signed out elsewhere or idles out
  }
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export class DevicesView {
  constructor({ list, status, onSignOut }) {
    this.list = list;
    this.status = status;
    this.onSignOut = onSignOut;
  }

  render(devices) {
    this.status.textContent = devices.length ? "" : "No device stays signed in.";
    this.list.replaceChildren(
      ...devices.map((device) => {
        const label = `${device.name}${device.current ? " (this one)" : ""}`;
        const about = `since ${when(device.created)}, last used ${when(device.last_used)}`;
        return el(
          "li",
          { className: "device-list-item", dataset: { device: device.id } },
          el("span", {}, el("strong", {}, label), " ", el("small", {}, about)),
          button("Sign out", () => this.onSignOut(device.id), {
            className: "quiet",
            attrs: { "aria-label": `Sign out ${label}` },
          }),
        );
      }),
    );
  }

  error(text) {
    this.status.textContent = text;
  }

  clear() {
    this.list.replaceChildren();
    this.status.textContent = "";
  }
}

// The page's device actions: the grant after login, "Your devices", signing out.
export class DeviceControl {
  constructor(app) {
    this.app = app;
    this.view = new DevicesView({
      list: $("device-list"),
      status: $("device-status"),
      onSignOut: (id) => this.signOut(id),
    });
    $("devices").addEventListener("toggle", () => {
      if ($("devices").open) this.refresh();
    });
    // Signing out everywhere ends this page's session too: it asks first (Escape keeps it).
    $("signout-everywhere").addEventListener("click", () => this.askSignOutEverywhere(true));
    $("signout-everywhere-no").addEventListener("click", () => this.askSignOutEverywhere(false));
    $("signout-everywhere-yes").addEventListener("click", () => this.signOutEverywhere());
    $("signout-confirm").addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault(); // the page's own Escape handling leaves it alone
      this.askSignOutEverywhere(false);
    });
  }

  askSignOutEverywhere(asking) {
    $("signout-confirm").hidden = !asking;
    $("signout-everywhere").hidden = asking;
    (asking ? $("signout-everywhere-no") : $("signout-everywhere")).focus();
  }

  refresh() {
    const connection = this.app.connection;
    if (connection !== null && connection.isReady) connection.request({ type: "devices" });
  }

  granted(grant) {
    trade(grant, this.app.state.me).then((ok) => {
      if (!ok) this.app.showNotice("This device could not be kept signed in; you will be asked for your password next time.");
      else if ($("devices").open) this.refresh();
    });
  }

  reply(event) {
    if (event.type !== "devices") {
      this.view.error(event.message);
      return;
    }
    this.current = event.devices.find((device) => device.current)?.id ?? null;
    this.view.render(event.devices);
  }

  signOut(id) {
    if (id === this.current) forget();
    this.app.connection.request({ type: "device_signout", id });
  }

  signOutEverywhere() {
    deviceHint.set("");
    this.app.connection.request({ type: "signout_everywhere" });
  }

  // Refused at login: a device login that no longer works is forgotten here too.
  refused(withDevice) {
    if (!withDevice) return false;
    forget();
    return true;
  }

  loggedOut() {
    if (deviceHint.get()) forget();
    this.view.clear();
    $("signout-confirm").hidden = true;
    $("signout-everywhere").hidden = false;
    $("devices").open = false;
  }
}
