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
 *                                           and last {id, digest: {sha256: "<hex>"}} for a
 *                                           file of one part, else
 *                                           {id, digest: {parts_sha256: "<hex>"}}
 *   {type: "cancel", id}                 -> the digest job stops ({id, cancelled: true})
 *   any failure                          -> {id, error: "<message>"}
 *
 * The MD5 of a part becomes its Content-MD5, which the store checks against the bytes it
 * receives; the digest goes with the completion request and the server's checksum worker
 * compares it with the stored bytes ("verified end to end").
 *
 * The digest of a file of several parts is the SHA-256 of its parts' SHA-256 digests, in
 * part order (S3's "composite" checksum; repository/preservation/fixity.py PartsSha256
 * computes the same from the stored bytes). A part's SHA-256 comes from Web Crypto, the
 * browser's native SHA-256, which hashes a whole buffer at a time, several times faster
 * than SHA-256 in WebAssembly: a streamed SHA-256 of the whole file in hash-wasm was what
 * held a browser upload below the speed of the network on a machine of two cores. Where
 * Web Crypto is missing (a page not served over HTTPS or from localhost) or a part is
 * larger than WHOLE_PART_MAX, each part's SHA-256 is streamed through hash-wasm instead:
 * the same digest, slower.
 *
 * The digest job reads the file once for both: each part is read (the next one while the
 * current one is hashed) and goes into its MD5 and its SHA-256. The page signs a part when
 * its MD5 arrives; an "md5" job hashes one part by itself (a part retried, or a file whose
 * digest job is still waiting behind another file's).
 *
 * Memory stays bounded: at most two parts of up to WHOLE_PART_MAX are held (the one being
 * hashed and the next being read), or SLICE bytes on the streamed path. Digest jobs run
 * one after another (a file that started first finishes first); MD5 jobs run as they come.
 */
"use strict";

const SLICE = 4 * 1024 * 1024;
const WHOLE_PART_MAX = 128 * 1024 * 1024; // larger parts are hashed SLICE by SLICE
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

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// One read of the file for both digests: each part goes into its MD5 and its SHA-256, and
// each part's MD5 is posted as soon as the part is hashed, so the page can sign that part.
async function digest(id, blob, partSize) {
  const md5 = await self.hashwasm.createMD5();
  const subtle = partSize <= WHOLE_PART_MAX && self.crypto && self.crypto.subtle;
  const streamed = subtle ? null : await self.hashwasm.createSHA256();
  self.postMessage({ id, started: true });
  const count = Math.max(1, Math.ceil(blob.size / partSize));
  const partDigests = []; // in part order: a promise of each part's SHA-256, or the digest
  const read = (part) => blob.slice((part - 1) * partSize, Math.min(part * partSize, blob.size)).arrayBuffer();
  let next = subtle ? read(1) : null;
  let lastReport = 0;
  const report = (offset) => {
    const now = Date.now();
    if (now - lastReport > 250) {
      lastReport = now;
      self.postMessage({ id, progress: offset });
    }
  };
  for (let part = 1; part <= count; part += 1) {
    if (cancelled.has(id)) return null;
    const start = (part - 1) * partSize;
    const end = Math.min(start + partSize, blob.size);
    md5.init();
    if (subtle) {
      const buffer = await next;
      if (part < count) next = read(part + 1);
      // Web Crypto hashes on a thread of its own while this one computes the MD5.
      partDigests.push(subtle.digest("SHA-256", buffer));
      md5.update(new Uint8Array(buffer));
      if (partDigests.length > 1) await partDigests[partDigests.length - 2]; // two parts at most
    } else {
      streamed.init();
      for (let offset = start; offset < end; offset += SLICE) {
        if (cancelled.has(id)) return null;
        const chunk = new Uint8Array(await blob.slice(offset, Math.min(offset + SLICE, end)).arrayBuffer());
        streamed.update(chunk);
        md5.update(chunk);
        report(offset + chunk.length);
      }
      partDigests.push(streamed.digest("binary"));
    }
    self.postMessage({ id, part, md5: base64(md5.digest("binary")) });
    report(end);
  }
  const digests = await Promise.all(partDigests);
  if (count === 1) return { sha256: hex(digests[0]) };
  const joined = new Uint8Array(32 * count);
  digests.forEach((partDigest, index) => joined.set(new Uint8Array(partDigest), index * 32));
  if (subtle) return { parts_sha256: hex(await subtle.digest("SHA-256", joined)) };
  streamed.init();
  streamed.update(joined);
  return { parts_sha256: streamed.digest("hex") };
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
        const result = await digest(message.id, message.blob, partSize);
        if (result === null) self.postMessage({ id: message.id, cancelled: true });
        else self.postMessage({ id: message.id, digest: result });
      } catch (err) {
        failed(message.id, err);
      } finally {
        cancelled.delete(message.id);
      }
    });
  }
};
