// How the timeline reads in time: day separators ("Today", "Yesterday", "Mon 30 Nov"),
// the full date and time for a hover, and which messages share one header (one sender,
// a few minutes apart). Pure: the caller passes "now"; tested under Node
// (tests/js/timeline.test.mjs).

export const GROUP_MINUTES = 5; // messages of one sender this close share one header

function date(ts) {
  const when = new Date(ts);
  return Number.isNaN(when.getTime()) ? null : when;
}

// The local calendar day of `ts`, as "2026-11-30" (null for an unreadable time).
export function dayKey(ts) {
  const when = date(ts);
  if (when === null) return null;
  const pad = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
}

// A day separator's text: "Today", "Yesterday", "Mon 30 Nov", and the year when it is not
// this one ("Mon 30 Nov 2025").
export function dayLabel(ts, now = new Date(), locale = undefined) {
  const when = date(ts);
  if (when === null) return "";
  const key = dayKey(when);
  if (key === dayKey(now)) return "Today";
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (key === dayKey(yesterday)) return "Yesterday";
  const part = (options) => new Intl.DateTimeFormat(locale, options).format(when);
  const label = `${part({ weekday: "short" })} ${when.getDate()} ${part({ month: "short" })}`;
  return when.getFullYear() === now.getFullYear() ? label : `${label} ${when.getFullYear()}`;
}

// The full date and time, for a message's hover: "Monday, 30 November 2026 at 10:02:15".
export function fullTime(ts, locale = undefined) {
  const when = date(ts);
  if (when === null) return String(ts);
  return when.toLocaleString(locale, { dateStyle: "full", timeStyle: "medium" });
}

// Whether `message` shares the header of `previous` (the item before it in the timeline):
// both messages (not room events), one sender, one day, at most GROUP_MINUTES apart.
export function continues(previous, message) {
  if (previous === null || previous === undefined) return false;
  if (previous.type === "room_event" || message.type === "room_event") return false;
  if (previous.from !== message.from) return false;
  const before = date(previous.ts);
  const after = date(message.ts);
  if (before === null || after === null || dayKey(before) !== dayKey(after)) return false;
  const gap = after.getTime() - before.getTime();
  return gap >= 0 && gap <= GROUP_MINUTES * 60 * 1000;
}

// Runs of like room events: a burst of joins (the directory sync, fifty people joining a
// new room) reads as one line, "bob, carol and 48 others joined #dev", as Slack and
// Mattermost show it, instead of fifty. The key says which events make one run: a
// member's own join, or own leave; an invite or kick by one actor. null: never grouped.
export const RUN_ACTIONS = new Set(["join", "leave", "invite", "kick"]);

export function runKey(item) {
  if (item === null || item === undefined || item.type !== "room_event" || !RUN_ACTIONS.has(item.action)) return null;
  return item.action === "join" || item.action === "leave" ? item.action : `${item.action}:${item.actor}`;
}

// Whether `item` continues the run of `previous` (the item before it): one key, one day.
export function sameRun(previous, item) {
  const key = runKey(item);
  return key !== null && key === runKey(previous) && dayKey(previous.ts) === dayKey(item.ts);
}

// "10:02" today, else "Yesterday 17:31" or "Mon 30 Nov 09:15": when someone was last seen,
// or a conversation's last activity.
export function whenText(ts, now = new Date(), locale = undefined) {
  const when = date(ts);
  if (when === null) return "";
  const time = when.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  const day = dayLabel(ts, now, locale);
  return day === "Today" ? time : `${day} ${time}`;
}
