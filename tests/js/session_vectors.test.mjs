// The client session's rules as data (tests/vectors/session*.json, the format in each
// file's "about"), played against the page's ChatSession (securechat/web/session.js); the
// Python ClientSession plays the same files in tests/test_session_vectors.py. The adapter
// below maps the session's own calls, messages and events to the vectors' neutral form.
// Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const module = process.env.SESSION_MODULE || new URL("../../securechat/web/session.js", import.meta.url).href;
const { ChatSession } = await import(module);

const VECTORS = new URL("../vectors/", import.meta.url);
const SHOWN = ["id", "room", "code"]; // what a reply or a pushed event shows, when it has it

function cases() {
  return readdirSync(VECTORS)
    .filter((name) => name.startsWith("session") && name.endsWith(".json"))
    .sort()
    .flatMap((name) => JSON.parse(readFileSync(new URL(name, VECTORS), "utf8")).cases);
}

function shown(event) {
  const out = { type: event.type };
  for (const key of SHOWN) if (event[key] !== undefined) out[key] = event[key];
  return out;
}

class Player {
  constructor({ user, password = null, token = null }) {
    this.session = new ChatSession({ user, password, token });
    this.now = 0;
    this.placeholders = new Map(); // the session's ref -> $name
    this.counts = new Map(); // message type -> refs it named by itself
    this.serverRefs = new Set(); // refs the vector wrote (a server ping's)
  }

  step(step) {
    if (step.at !== undefined) this.now = step.at;
    const session = this.session;
    if ("connect" in step) session.connectionMade(this.now);
    else if ("server" in step) {
      const frames = Array.isArray(step.server) ? step.server : [step.server];
      for (const frame of frames) session.receive(JSON.stringify(this.real(frame)), this.now);
    } else if ("send" in step) {
      const { body, room = null, to = null } = step.send;
      this.placeholders.set(session.submit(body, { room, to }).ref, `$${step.as}`);
    } else if ("request" in step) this.placeholders.set(session.request(step.request), `$${step.as}`);
    else if ("tick" in step) session.tick(this.now);
    else if ("lost" in step) session.connectionLost(step.lost);
    else if ("close" in step) session.close();
    else throw new Error(`a step that does nothing: ${JSON.stringify(step)}`);
  }

  out() {
    return this.session.takeOutgoing().map((text) => {
      const frame = JSON.parse(text);
      if (frame.ref !== undefined) frame.ref = this.placeholder(frame.ref, frame.type);
      return frame;
    });
  }

  events() {
    return this.session
      .takeEvents()
      .map((event) => this.neutral(event))
      .filter((event) => event !== null);
  }

  state(wanted) {
    const s = this.session;
    const every = {
      state: s.state,
      last_id: s.lastId,
      rooms: [...s.rooms].sort(),
      token: s.token,
      holds_password: s.holdsPassword,
      can_log_in: s.canLogIn,
      unacknowledged: [...s.unacked.keys()].map((ref) => this.placeholders.get(ref)),
      next_deadline: s.nextDeadline(),
    };
    return Object.fromEntries(Object.keys(wanted).map((key) => [key, every[key]]));
  }

  neutral(event) {
    const ref = () => this.placeholders.get(event.ref);
    switch (event.kind) {
      case "logged_in":
        return { event: "logged_in", resumed: event.resumed };
      case "refused":
        return { event: "login_refused", code: event.error.code, with_token: event.withToken };
      case "reply":
        return { event: "reply", ref: ref(), ...shown(event.event) };
      case "delivered":
        return { event: "delivered", ref: ref(), id: event.message.id };
      case "send_failed":
        return { event: "send_failed", ref: ref(), code: event.code };
      case "ended":
        return { event: "ended" };
      case "message":
        return { event: "pushed", ...shown(event.message) };
      case "pushed":
        return { event: "pushed", ...shown(event.event) };
      case "caught_up":
        return null; // the page's own: the Python session has none
      default:
        throw new Error(`an event the vectors do not know: ${event.kind}`);
    }
  }

  placeholder(ref, type) {
    if (!this.placeholders.has(ref) && !this.serverRefs.has(ref)) {
      const count = (this.counts.get(type) || 0) + 1;
      this.counts.set(type, count);
      this.placeholders.set(ref, `$${type}${count}`);
    }
    return this.placeholders.get(ref) ?? ref;
  }

  real(frame) {
    if (typeof frame.ref !== "string") return frame;
    if (!frame.ref.startsWith("$")) {
      this.serverRefs.add(frame.ref);
      return frame;
    }
    for (const [real, name] of this.placeholders) if (name === frame.ref) return { ...frame, ref: real };
    throw new Error(`no ref made up yet for ${frame.ref}`);
  }
}

for (const vector of cases()) {
  test(vector.why, () => {
    const player = new Player(vector.session);
    vector.steps.forEach((step, index) => {
      player.step(step);
      const where = `step ${index + 1}: ${JSON.stringify(step).slice(0, 120)}`;
      assert.deepEqual(player.out(), step.out ?? [], where);
      assert.deepEqual(player.events(), step.events ?? [], where);
      assert.deepEqual(player.state(step.state ?? {}), step.state ?? {}, where);
    });
  });
}
