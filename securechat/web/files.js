// Attachments without I/O (issue 27, docs/protocol.md "Files"): a message's caption, sizes
// as people read them, what a refusal says, which files get an inline preview, and the
// upload state machine as one literal table. Nothing here touches the DOM or the network;
// tests/js/files.test.mjs runs it under Node.

// The content types the server previews (it makes thumbnails of these only).
const PREVIEWED = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
export const MAX_FILES = 10; // the server's max_files_per_message (docs/protocol.md)

// The caption: the body without the server's `[file: NAME, SIZE, id ID]` lines, one per
// file, last. A line is dropped only if it names its file's id, so a body that has no such
// lines (our own send, acknowledged before the server's copy came) keeps every line.
export function captionOf(message) {
  const files = Array.isArray(message.files) ? message.files : [];
  const lines = message.body.split("\n");
  let keep = lines.length;
  for (let at = files.length - 1; at >= 0 && keep > 0; at -= 1) {
    const line = lines[keep - 1];
    if (!(line.startsWith("[file: ") && line.endsWith(`, id ${files[at].id}]`))) break;
    keep -= 1;
  }
  return lines.slice(0, keep).join("\n");
}

// 1536 -> "1.5 KiB": binary units with one decimal, as the server's file lines
// (securechat/attachments/sizes.py format_size).
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "?";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(1)} ${units[unit]}`;
}

// A refusal before asking, when the hello announces `max_file_size` (today's servers do not:
// their ticket refuses with file_too_large, before a byte is sent either way); else null.
export function sizeRefusal(size, hello) {
  const limit = hello !== null && hello !== undefined ? hello.max_file_size : undefined;
  if (!Number.isInteger(limit) || limit <= 0 || size <= limit) return null;
  const message = `the file is ${formatSize(size)}; this server takes files of up to ${formatSize(limit)}`;
  return { kind: "refused", code: "file_too_large", message };
}

// Whether the page asks for a thumbnail: the server made one, or may still be making it
// (an image type, and no word yet).
export function hasPreview(file) {
  return file.thumbnail === true || (file.thumbnail === undefined && PREVIEWED.has(file.type));
}

// What a refusal (a ticket's error, or an upload's JSON answer) says to the user.
const REFUSALS = {
  file_too_large: "too large",
  quota_exceeded: "over your daily upload quota",
  too_many_uploads: "too many uploads at once",
  files_disabled: "this server does not take files",
  bad_ticket: "the upload's permission expired",
  no_such_file: "the file is gone",
};

export function refusalText(code, message) {
  const what = REFUSALS[code];
  if (what === undefined) return message || "the upload failed";
  return message ? `${what}: ${message}` : what;
}

// Refusals a retry may cure by itself (later, or with a fresh ticket).
const RETRYABLE = new Set(["too_many_uploads", "bad_ticket", "network", "server_error", "shutting_down", "quota_exceeded"]);

export function canRetry(upload) {
  return upload.status === "failed" && (RETRYABLE.has(upload.code) || !(upload.code in REFUSALS));
}

// The upload state machine: status -> the events it takes -> the next status.
//   ticket (asking for a ticket) -> uploading (bytes going, with progress) -> done (the
//   server holds the file: its id goes with the next send) -> sent; any step may fail
//   (failed: why, retry makes a new ticket) or be cancelled by the user.
export const UPLOAD_STEPS = {
  ticket: { ticket: "uploading", refused: "failed", cancel: "cancelled" },
  uploading: { progress: "uploading", stored: "done", refused: "failed", cancel: "cancelled" },
  done: { sent: "sent", cancel: "cancelled" },
  failed: { retry: "ticket", cancel: "cancelled" },
  sent: {},
  cancelled: {},
};

let uploads = 0;

// A new upload of `file` ({ name, size, type }): asking for its ticket.
export function newUpload(file) {
  uploads += 1;
  return { key: `u${uploads}`, name: file.name, size: file.size, type: file.type || "", status: "ticket", sent: 0, code: null, reason: "", stored: null };
}

// `upload` after `event` ({ kind, ... }); false when the event does not apply now (a late
// answer to a cancelled upload, a progress after a refusal): the caller drops it.
export function advance(upload, event) {
  const next = UPLOAD_STEPS[upload.status][event.kind];
  if (next === undefined) return false;
  upload.status = next;
  if (event.kind === "progress") upload.sent = Math.min(event.sent, upload.size);
  else if (event.kind === "stored") {
    upload.stored = event.file;
    upload.sent = upload.size;
  } else if (event.kind === "refused") {
    upload.code = event.code;
    upload.reason = refusalText(event.code, event.message);
  } else if (event.kind === "retry") {
    upload.sent = 0;
    upload.code = null;
    upload.reason = "";
  }
  return true;
}

// "42 %" of an upload in flight.
export function progressText(upload) {
  if (upload.status === "ticket") return "waiting…";
  if (upload.size === 0) return "100 %";
  return `${Math.floor((upload.sent / upload.size) * 100)} %`;
}

// The uploads that go with the next send, and whether the send must wait for others.
export function readyToSend(list) {
  const busy = list.some((u) => u.status === "ticket" || u.status === "uploading");
  const files = list.filter((u) => u.status === "done").map((u) => u.stored);
  return { busy, files };
}
