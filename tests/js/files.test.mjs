// Attachments without I/O (securechat/web/files.js): captions, sizes, refusals, previews and
// the upload state machine. Run by tests/test_web_session_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

const module = process.env.FILES_MODULE || new URL("../../securechat/web/files.js", import.meta.url).href;
const { advance, canRetry, captionOf, formatSize, hasPreview, newUpload, progressText, readyToSend, refusalText, sizeRefusal } = await import(module);

const PDF = { id: "7kq2xm4v6c3j2h5n7p4r6t2w3y", name: "report.pdf", size: 1258291, type: "application/pdf" };
const PNG = { id: "aaaaaaaaaaaaaaaaaaaaaaaaaa", name: "shot.png", size: 2048, type: "image/png", thumbnail: true };

test("the caption is the body without the server's last line per file", () => {
  const body = "the report\nsee page 2\n[file: report.pdf, 1.2 MiB, id 7kq2xm4v6c3j2h5n7p4r6t2w3y]\n[file: shot.png, 2.0 KiB, id aaaaaaaaaaaaaaaaaaaaaaaaaa]";
  assert.equal(captionOf({ body, files: [PDF, PNG] }), "the report\nsee page 2");
  assert.equal(captionOf({ body: "[file: report.pdf, 1.2 MiB, id 7kq2xm4v6c3j2h5n7p4r6t2w3y]", files: [PDF] }), "");
});

test("a body without the file lines (our own acknowledged send) keeps every line", () => {
  assert.equal(captionOf({ body: "line one\nline two", files: [PDF] }), "line one\nline two");
  assert.equal(captionOf({ body: "no files here" }), "no files here");
  // A line that looks like a file line but names another id is the caption's.
  const forged = "[file: report.pdf, 1.2 MiB, id zzzzzzzzzzzzzzzzzzzzzzzzzz]";
  assert.equal(captionOf({ body: forged, files: [PDF] }), forged);
});

test("sizes read as the server's file lines: binary units, one decimal", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(1023), "1023 B");
  assert.equal(formatSize(1536), "1.5 KiB");
  assert.equal(formatSize(25 * 1024 * 1024), "25.0 MiB");
  assert.equal(formatSize(-1), "?");
});

test("a preview is asked for a thumbnail the server made, or an image it may still be making", () => {
  assert.equal(hasPreview(PNG), true);
  assert.equal(hasPreview({ ...PNG, thumbnail: undefined }), true);
  assert.equal(hasPreview({ ...PNG, thumbnail: false }), false); // it failed to decode
  assert.equal(hasPreview({ ...PDF }), false);
  assert.equal(hasPreview({ ...PDF, type: "image/svg+xml" }), false); // never inline
});

test("refusals say why in words", () => {
  assert.equal(refusalText("file_too_large", "the file is 5.0 MiB; this server takes files of up to 4.0 MiB"), "too large: the file is 5.0 MiB; this server takes files of up to 4.0 MiB");
  assert.equal(refusalText("files_disabled", ""), "this server does not take files");
  assert.equal(refusalText("network", "the connection broke"), "the connection broke");
});

test("an upload goes ticket, uploading, done, sent; late events are dropped", () => {
  const upload = newUpload({ name: "a.pdf", size: 1000, type: "application/pdf" });
  assert.equal(upload.status, "ticket");
  assert.equal(progressText(upload), "waiting…");
  assert.equal(advance(upload, { kind: "stored", file: PDF }), false); // not before its ticket
  assert.ok(advance(upload, { kind: "ticket" }));
  assert.ok(advance(upload, { kind: "progress", sent: 420 }));
  assert.equal(progressText(upload), "42 %");
  assert.deepEqual(readyToSend([upload]), { busy: true, files: [] });
  assert.ok(advance(upload, { kind: "stored", file: PDF }));
  assert.equal(upload.status, "done");
  assert.deepEqual(readyToSend([upload]), { busy: false, files: [PDF] });
  assert.ok(advance(upload, { kind: "sent" }));
  assert.equal(advance(upload, { kind: "cancel" }), false); // sent is final
});

test("a refused upload says why, may be retried when a retry can help, and can be cancelled", () => {
  const big = newUpload({ name: "big.bin", size: 10, type: "" });
  advance(big, { kind: "refused", code: "file_too_large", message: "too big for us" });
  assert.equal(big.status, "failed");
  assert.equal(big.reason, "too large: too big for us");
  assert.equal(canRetry(big), false);
  const busy = newUpload({ name: "b.bin", size: 10, type: "" });
  advance(busy, { kind: "ticket" });
  advance(busy, { kind: "refused", code: "too_many_uploads", message: "" });
  assert.equal(canRetry(busy), true);
  assert.ok(advance(busy, { kind: "retry" }));
  assert.deepEqual([busy.status, busy.code, busy.reason], ["ticket", null, ""]);
  assert.ok(advance(busy, { kind: "cancel" }));
  assert.equal(advance(busy, { kind: "ticket" }), false); // the ticket came after the cancel
  assert.notEqual(newUpload({ name: "x", size: 1 }).key, newUpload({ name: "x", size: 1 }).key);
});

test("a hello that announces max_file_size refuses a larger file before any ticket", () => {
  assert.equal(sizeRefusal(5000, { max_frame: 65536 }), null); // today's hello: the ticket decides
  assert.equal(sizeRefusal(5000, null), null);
  assert.equal(sizeRefusal(1024, { max_file_size: 1024 }), null);
  const refused = sizeRefusal(3 * 1024 * 1024, { max_file_size: 1024 * 1024 });
  assert.deepEqual(refused, { kind: "refused", code: "file_too_large", message: "the file is 3.0 MiB; this server takes files of up to 1.0 MiB" });
  const upload = newUpload({ name: "disk.img", size: 3 * 1024 * 1024 });
  assert.ok(advance(upload, refused)); // from "ticket": never asked
  assert.equal(upload.reason, "too large: the file is 3.0 MiB; this server takes files of up to 1.0 MiB");
});
