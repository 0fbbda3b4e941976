/* Kura 蔵 — the upload page's hashing worker (a dedicated Web Worker of static/js/uploader.js).
 *
 * Hashing a large file on the page's own thread would freeze the page, so uploader.js
 * hands the work to this worker. It uses hash-wasm (static/vendor/hash-wasm-4.13.0, its
 * MD5 and SHA-256 WebAssembly builds), whose URLs the page sends first, because static
 * file names carry a content hash in production:
 *
 *   {type: "init", scripts: [md5Url, sha256Url]}
 *   {type: "md5", id, blob}                 -> {id, md5: "<base64 of the 16-byte digest>"}
 *   {type: "sha256", id, blob}              -> {id, progress: <bytes read>} … then
 *                                              {id, sha256: "<hex>"}
 *   {type: "cancel", id}                    -> the SHA-256 job stops ({id, cancelled: true})
 *   any failure                             -> {id, error: "<message>"}
 *
 * The MD5 of a part becomes its Content-MD5, which the store checks against the bytes it
 * receives; the SHA-256 of the whole file goes with the completion request and the
 * server's checksum worker compares it with the stored bytes ("verified end to end").
 *
 * Memory stays bounded: a Blob is read SLICE bytes at a time, whatever its size. SHA-256
 * jobs run one after another (a file that started first finishes first); MD5 jobs run as
 * they come, the page spreads them over a few workers.
 */
"use strict";

const SLICE = 4 * 1024 * 1024;
const cancelled = new Set();
let shaQueue = Promise.resolve();

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

async function sha256Hex(id, blob) {
  const hasher = await self.hashwasm.createSHA256();
  hasher.init();
  let lastReport = 0;
  for (let offset = 0; offset < blob.size; offset += SLICE) {
    if (cancelled.has(id)) return null;
    const chunk = await blob.slice(offset, offset + SLICE).arrayBuffer();
    hasher.update(new Uint8Array(chunk));
    const done = Math.min(offset + SLICE, blob.size);
    const now = Date.now();
    if (now - lastReport > 250) {
      lastReport = now;
      self.postMessage({ id, progress: done });
    }
  }
  return hasher.digest("hex");
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
  if (message.type === "sha256") {
    shaQueue = shaQueue.then(async () => {
      try {
        const sha256 = await sha256Hex(message.id, message.blob);
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
