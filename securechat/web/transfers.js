// The page's file transfers: HTTPS requests to the web port it was loaded from, each
// authorised by a one-use ticket the session asked for (docs/protocol.md "Files"). The
// ticket goes in the Authorization header, never in a URL, and no cookie is involved.
//
// Uploads use XMLHttpRequest, the one browser API with upload progress events (fetch has
// none); downloads use fetch() into a Blob, shown or saved through a blob: URL the page
// revokes when done with it.

// A request's URL: the page's own origin (the web port; connect-src 'self' allows it),
// whatever port the ticket names for other clients behind the same host.
const urlOf = (ticket) => `${location.origin}${ticket.path}`;

// Turns a refused answer into { code, message } (the server's JSON, else the status).
function refusal(status, text) {
  try {
    const answer = JSON.parse(text);
    if (answer && typeof answer.code === "string") return { code: answer.code, message: String(answer.message || "") };
  } catch {
    // not JSON (a proxy's page): the status says it
  }
  return { code: status >= 500 ? "server_error" : "http_error", message: `the server answered ${status}` };
}

// POSTs `file` (a Blob) with `ticket`. onProgress(bytesSent). Returns { done, abort }:
// `done` resolves with the stored file's object, or rejects with { code, message }.
export function upload(ticket, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", urlOf(ticket));
    xhr.setRequestHeader("Authorization", `Bearer ${ticket.ticket}`);
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status === 201) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject({ code: "server_error", message: "the server's answer could not be read" });
        }
      } else {
        reject(refusal(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => reject({ code: "network", message: "the connection to the server broke" }));
    xhr.addEventListener("abort", () => reject({ code: "cancelled", message: "cancelled" }));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

// GETs what `ticket` opens, as a Blob. Rejects with { code, message }.
export async function download(ticket) {
  let response;
  try {
    response = await fetch(urlOf(ticket), {
      headers: { Authorization: `Bearer ${ticket.ticket}` },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw { code: "network", message: "the connection to the server broke" };
  }
  if (!response.ok) throw refusal(response.status, await response.text());
  return response.blob();
}

// Saves `blob` as `name` in the user's downloads (the browser asks where, if set to).
export function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), SAVE_GRACE_MS); // the download has started by then
}

const SAVE_GRACE_MS = 60_000;
