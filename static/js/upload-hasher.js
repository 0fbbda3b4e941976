/* Kura 蔵 — the upload page's hashing worker (a dedicated Web Worker of static/js/uploader.js).
 *
 * Hashing a large file on the page's own thread would freeze the page, so uploader.js
 * hands the work to this worker. It uses hash-wasm (static/vendor/hash-wasm-4.13.0, its
 * MD5 and SHA-256 WebAssembly builds), whose URLs the page sends first, because static
 * file names carry a content hash in production:
 *
 *   {type: "init", scripts: [md5Url, sha256Url]}
 *   {type: "md5", id, blob}              -> {id, md5: "<base64 of the 16-byte digest>"}
 *   {type: "digest", id, blob, partSize} -> {id, started: true}, then for each part in
 *                                           order {id, part: <number>, md5: "<base64>"},
 *                                           {id, progress: <bytes read>} now and then,
 *                                           and last {id, sha256: "<hex>"}
 *   {type: "cancel", id}                 -> the digest job stops ({id, cancelled: true})
 *   any failure                          -> {id, error: "<message>"}
 *
 * The MD5 of a part becomes its Content-MD5, which the store checks against the bytes it
 * receives; the SHA-256 of the whole file goes with the completion request and the
 * server's checksum worker compares it with the stored bytes ("verified end to end").
 *
 * The digest job reads the file once for both: every slice goes into the SHA-256 of the
 * file and the MD5 of its part (reading the file twice, once per digest, cost a second
 * pass through the browser's Blob reads on a machine of two cores). The page signs a part
 * when its MD5 arrives; an "md5" job hashes one part by itself (a part retried, or a file
 * whose digest job is still waiting behind another file's).
 *
 * Memory stays bounded: a Blob is read SLICE bytes at a time, whatever its size. Digest
 * jobs run one after another (a file that started first finishes first); MD5 jobs run as
 * they come.
 */
"use strict";

const SLICE = 4 * 1024 * 1024;
const cancelled = new Set();
let digestQueue = Promise.resolve();

function base64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

async function md5Base64(blob) {
  const hasher = await self.hashwasm.createMD5();
  hasher.init();
  for (let offset = 0; offset < blob.size; offset += SLICE) {
    const chunk = await blob.slice(offset, offset + SLICE).arrayBuffer();
    hasher.update(new Uint8Array(chunk));
  }
  return base64(hasher.digest("binary"));
}

// One read of the file for both digests: each slice goes into the file's SHA-256 and into
// the MD5 of the part it belongs to (slices never cross a part boundary), and each part's
// MD5 is posted as soon as its last slice is read, so the page can sign that part.
async function digest(id, blob, partSize) {
  const sha256 = await self.hashwasm.createSHA256();
  const md5 = await self.hashwasm.createMD5();
  sha256.init();
  md5.init();
  self.postMessage({ id, started: true });
  let lastReport = 0;
  let part = 1;
  let partEnd = Math.min(partSize, blob.size);
  for (let offset = 0; offset < blob.size; ) {
    if (cancelled.has(id)) return null;
    const end = Math.min(offset + SLICE, partEnd);
    const chunk = new Uint8Array(await blob.slice(offset, end).arrayBuffer());
    sha256.update(chunk);
    md5.update(chunk);
    offset = end;
    if (offset === partEnd) {
      self.postMessage({ id, part, md5: base64(md5.digest("binary")) });
      md5.init();
      part += 1;
      partEnd = Math.min(partEnd + partSize, blob.size);
    }
    const now = Date.now();
    if (now - lastReport > 250) {
      lastReport = now;
      self.postMessage({ id, progress: offset });
    }
  }
  return sha256.digest("hex");
}

function failed(id, err) {
  self.postMessage({ id, error: (err && (err.name ? `${err.name}: ${err.message}` : String(err))) || "error" });
}

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === "init") {
    importScripts(...message.scripts);
    return;
  }
  if (message.type === "cancel") {
    cancelled.add(message.id);
    return;
  }
  if (message.type === "md5") {
    md5Base64(message.blob).then(
      (md5) => self.postMessage({ id: message.id, md5 }),
      (err) => failed(message.id, err),
    );
    return;
  }
  if (message.type === "digest") {
    digestQueue = digestQueue.then(async () => {
      try {
        const partSize = message.partSize > 0 ? message.partSize : message.blob.size || 1;
        const sha256 = await digest(message.id, message.blob, partSize);
        if (sha256 === null) self.postMessage({ id: message.id, cancelled: true });
        else self.postMessage({ id: message.id, sha256 });
      } catch (err) {
        failed(message.id, err);
      } finally {
        cancelled.delete(message.id);
      }
    });
  }
};
