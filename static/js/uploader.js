/* Kura 蔵 — the browser upload page (/projects/<id>/upload/).
 *
 * Uppy (static/vendor/uppy-5.2.4, global `Uppy`) draws the dashboard and moves the bytes;
 * this file connects it to Kura's upload API (docs/architecture.md, "Upload and checksum flow"):
 *
 *   preprocessor           POST /api/v1/uploads/             one server upload per file
 *   createMultipartUpload  (the upload made by the preprocessor)
 *   signPart               POST /api/v1/uploads/<id>/parts   URLs of up to six parts, each
 *                                                            bound to its MD5, signed ahead
 *   (Uppy)                 PUT <url> with Content-MD5         part bytes straight to storage
 *   listParts              GET  /api/v1/uploads/<id>/parts   parts already stored (resume)
 *   completeMultipartUpload POST /api/v1/uploads/<id>/complete   with the file's digest
 *   abortMultipartUpload   DELETE /api/v1/uploads/<id>       only when the user removes a file
 *   then                   GET  /api/v1/objects/<object_id>/ every 1.5 s until verified/failed
 *
 * End-to-end integrity: a Web Worker (static/js/upload-hasher.js: Web Crypto and hash-wasm)
 * reads the file once, in order, for each part's MD5 and SHA-256 (a part the read has not
 * reached yet is hashed by itself in another worker). Each part's URL is signed for its
 * MD5; the store refuses a part whose bytes do not match (400), and Uppy signs and sends it
 * again. Completion sends the file's digest to Kura (its SHA-256 for a file of one part,
 * else the SHA-256 of its parts' SHA-256s); the server's checksum worker compares it with
 * the stored bytes, and the object is then "verified end to end" (without a browser
 * digest: "verified (at rest)"). Without Web Workers parts are signed without an MD5 and
 * no digest is sent.
 *
 * Speed: Uppy runs signPart inside its six request slots, so each upload's signer (see
 * "Signing parts") signs parts ahead, six per request, while earlier parts are on the
 * way; Uppy's request for a part is then answered at once and the slots carry PUTs.
 *
 * Failures: Kura's API answers 503 or 429 with Retry-After when it is briefly busy; api()
 * waits and asks again, as it does after a network error. A part URL the store refuses
 * with 403 (it expired during a long pause) is signed again.
 *
 * Resume after a reload: Golden Retriever keeps Uppy's state (each file's meta, which
 * carries Kura's upload id, and the multipart state) in localStorage under an id per user
 * and project. Files larger than 10 MiB come back as "ghosts"; adding the same file again
 * (same name, size, type and modification time; the row's "Choose the file again" button
 * opens the file chooser) fills the ghost in, and the upload continues after the parts the
 * server lists as stored. The batch choices (record, tier, available date) are kept in
 * localStorage under the same id.
 *
 * No build step: plain ES2020 in an IIFE.
 */
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const strings = JSON.parse(document.getElementById("upload-i18n").textContent);
  const POLL_INTERVAL_MS = 1500;
  const MAX_POLL_FAILURES = 5;
  const API_ATTEMPTS = 5; // each API request, when the server is busy or unreachable
  const RETRIED_STATUSES = new Set([429, 503]);
  const MAX_RETRY_AFTER_MS = 60_000;
  const PART_REFUSALS = 2; // times a part URL refused with 403 is signed again

  const form = document.getElementById("upload-batch");
  const recordSelect = document.getElementById("upload-record");
  const tierSelect = document.getElementById("upload-tier");
  const dateField = document.getElementById("upload-available-date-field");
  const dateInput = document.getElementById("upload-available-date");
  const reasonField = document.getElementById("upload-reason-field");
  const reasonInput = document.getElementById("upload-reason");
  const results = document.getElementById("upload-results");
  const resultsEmpty = document.getElementById("upload-results-empty");

  // --- The API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super(ApiError.describe(body) || strings.serverError);
      this.name = "ApiError";
      this.status = status;
      this.body = body;
      this.messages = ApiError.messages(body);
      // Uppy's retry logic reads err.source.status: 4xx are not retried, 5xx are.
      this.source = { status };
    }

    /** Every message of a DRF error body: {"field": ["msg", ...], "detail": "msg"}. */
    static messages(body) {
      if (!body || typeof body !== "object") return [];
      const out = [];
      for (const value of Object.values(body)) {
        if (Array.isArray(value)) {
          for (const item of value) out.push(...(typeof item === "string" ? [item] : ApiError.messages(item)));
        } else if (typeof value === "string") {
          out.push(value);
        } else if (value && typeof value === "object") {
          out.push(...ApiError.messages(value));
        }
      }
      return out;
    }

    static describe(body) {
      return ApiError.messages(body).join(" ");
    }
  }

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /** Resolves after `ms`, or rejects with an AbortError when `signal` aborts first. */
  function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) {
        reject(new DOMException("Aborted", "AbortError"));
        return;
      }
      const timer = window.setTimeout(() => {
        if (signal) signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        window.clearTimeout(timer);
        reject(new DOMException("Aborted", "AbortError"));
      };
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** How long to wait before asking again: the server's Retry-After, else a backoff. */
  function retryDelay(response, attempt) {
    const header = response ? response.headers.get("Retry-After") : null;
    let ms = NaN;
    if (header && /^\d+$/.test(header.trim())) ms = Number(header.trim()) * 1000;
    else if (header) ms = Date.parse(header) - Date.now();
    if (!Number.isFinite(ms) || ms < 0) ms = 500 * 2 ** (attempt - 1);
    return Math.min(ms, MAX_RETRY_AFTER_MS);
  }

  // A busy server (503: the database is briefly locked; 429: the rate limit) says when to
  // come back; those requests and ones lost on the network are asked again a few times.
  async function api(method, url, body, signal) {
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await fetch(url, {
          method,
          credentials: "same-origin",
          headers: {
            Accept: "application/json",
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
            ...(method === "GET" ? {} : { "X-CSRFToken": csrfToken() }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (err) {
        if (err && err.name === "AbortError") throw err;
        if (attempt < API_ATTEMPTS) {
          await sleep(retryDelay(null, attempt), signal);
          continue;
        }
        const offline = new Error(strings.serverError);
        offline.source = { status: 0 }; // retried by Uppy
        throw offline;
      }
      if (RETRIED_STATUSES.has(response.status) && attempt < API_ATTEMPTS) {
        await sleep(retryDelay(response, attempt), signal);
        continue;
      }
      if (response.status === 204) return null;
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }
  }

  const uploadUrl = (uploadId, suffix = "") => `${config.uploads_url}${uploadId}${suffix}`;
  const objectUrl = (objectId) => `${config.objects_url}${objectId}/`;
  const objectPageUrl = (objectId) => config.object_page_url.replace("{id}", String(objectId));

  // --- The batch form -----------------------------------------------------------------

  // Tiers that need an available date (the tier table's, sent in the page's config).
  const needsDate = (tier) => config.dated_tiers.includes(tier);

  // Tiers a curator reviews need a reason, as on the object page (the server checks too).
  const needsReason = (tier) => config.reviewed_tiers.includes(tier);

  function showDateField() {
    const dated = needsDate(tierSelect.value);
    dateField.hidden = !dated;
    dateInput.required = dated;
    const reviewed = needsReason(tierSelect.value);
    reasonField.hidden = !reviewed;
    reasonInput.required = reviewed;
  }
  // The batch choices survive a reload (an interrupted upload is usually continued with
  // the same ones), per user and project like Uppy's own saved state.
  const choicesKey = `${config.uppy_id}:batch`;

  function saveChoices() {
    try {
      window.localStorage.setItem(
        choicesKey,
        JSON.stringify({ record: recordSelect.value, tier: tierSelect.value, available_date: dateInput.value }),
      );
    } catch {
      // Storage full or disabled: the choices are simply not kept.
    }
  }

  function restoreChoices() {
    let saved = null;
    try {
      saved = JSON.parse(window.localStorage.getItem(choicesKey) || "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved !== "object") return;
    const offers = (select, value) => [...select.options].some((option) => option.value === value && !option.disabled);
    if (typeof saved.record === "string" && offers(recordSelect, saved.record)) recordSelect.value = saved.record;
    if (typeof saved.tier === "string" && offers(tierSelect, saved.tier)) tierSelect.value = saved.tier;
    if (typeof saved.available_date === "string" && saved.available_date >= dateInput.min) {
      dateInput.value = saved.available_date;
    }
  }

  restoreChoices();
  tierSelect.addEventListener("change", showDateField);
  showDateField();
  for (const field of [recordSelect, tierSelect, dateInput]) field.addEventListener("change", saveChoices);

  function setFieldErrors(id, messages) {
    const list = document.getElementById(`${id}-errors`);
    const field = document.getElementById(`${id}-field`);
    list.replaceChildren(
      ...messages.map((message) => {
        const li = document.createElement("li");
        li.textContent = message;
        return li;
      }),
    );
    field.classList.toggle("field-invalid", messages.length > 0);
    document.getElementById(id).setAttribute("aria-invalid", messages.length > 0 ? "true" : "false");
  }

  /** The batch choices, or null (with the problems shown next to the fields). */
  function readBatch() {
    const record = recordSelect.value;
    const tier = tierSelect.value;
    const availableDate = needsDate(tier) ? dateInput.value : "";
    const recordOk = record !== "";
    const dateOk = !needsDate(tier) || (availableDate !== "" && availableDate >= dateInput.min);
    const reason = needsReason(tier) ? reasonInput.value.trim() : "";
    const reasonOk = !needsReason(tier) || reason !== "";
    setFieldErrors("upload-record", recordOk ? [] : [strings.chooseRecord]);
    setFieldErrors("upload-available-date", dateOk ? [] : [strings.chooseDate]);
    setFieldErrors("upload-reason", reasonOk ? [] : [strings.chooseReason]);
    if (!recordOk) recordSelect.focus();
    else if (!dateOk) dateInput.focus();
    else if (!reasonOk) reasonInput.focus();
    if (!recordOk || !dateOk || !reasonOk) return null;
    return {
      record: record === "none" ? null : Number(record),
      tier,
      available_date: availableDate || null,
      reason,
    };
  }
  recordSelect.addEventListener("change", () => setFieldErrors("upload-record", []));
  reasonInput.addEventListener("input", () => setFieldErrors("upload-reason", []));
  dateInput.addEventListener("change", () => setFieldErrors("upload-available-date", []));

  // --- Uppy ---------------------------------------------------------------------------

  const { Uppy: UppyCore, Dashboard, AwsS3, GoldenRetriever } = window.Uppy;
  // Invisible and direction-changing characters: "photo\u202egpj.exe" shows as "photoexe.jpg".
  const HIDDEN_CHARACTER = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
  const language = document.documentElement.lang || "en";
  const uppyLocale = language.startsWith("ja") ? window.Uppy.locales.ja_JP : undefined;

  const uppy = new UppyCore({
    id: config.uppy_id,
    autoProceed: false,
    allowMultipleUploadBatches: true,
    restrictions: { minFileSize: 1, maxFileSize: config.max_file_size },
    ...(uppyLocale ? { locale: uppyLocale } : {}),
    // The server refuses the same names (repository/preservation/uploads.py, filename_normalize).
    onBeforeFileAdded: (file) => {
      const hidden = HIDDEN_CHARACTER.exec(file.name || "");
      if (!hidden) return true;
      const code = hidden[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      uppy.info(strings.hiddenCharacter.replace("%(code)s", code), "error", 10000);
      return false;
    },
    onBeforeUpload: (files) => {
      const pending = Object.values(files).some((f) => !f.meta.kuraUploadId && !f.progress.uploadStarted);
      if (!pending) return true;
      return readBatch() === null ? false : true;
    },
  });

  uppy.use(Dashboard, {
    inline: true,
    target: "#uppy-dashboard",
    width: "100%",
    height: 420,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    disableThumbnailGenerator: true, // research images can be gigabytes
    fileManagerSelectionType: "both", // datasets often arrive as folders
    note: strings.note,
    theme: "light",
  });

  uppy.use(GoldenRetriever, { expires: config.resume_hours * 60 * 60 * 1000 });

  /** The part size Kura's server chose; the same rule as repository/preservation/uploads.py otherwise. */
  function partSizeFor(file) {
    if (file && file.meta.kuraPartSize) return file.meta.kuraPartSize;
    const size = file ? file.size : 0;
    const MiB = 1024 * 1024;
    const grown = Math.min(config.large_part_size, size / config.parts_per_file);
    const needed = size / config.max_parts;
    return Math.max(config.min_part_size, Math.ceil(Math.max(grown, needed) / MiB) * MiB);
  }

  // Uppy asks for the chunk size with the file's Blob, synchronously.
  function fileForData(data) {
    return uppy.getFiles().find((file) => file.data === data);
  }

  /** Kura's upload of this file, started if needed (the preprocessor usually did). */
  async function startServerUpload(file, batch) {
    const started = await api("POST", config.uploads_url, {
      project: config.project,
      record: batch.record,
      filename: file.name,
      size: file.size,
      content_type: file.type || "",
      tier: batch.tier,
      available_date: batch.available_date,
      reason: batch.reason || "",
    });
    uppy.setFileMeta(file.id, {
      kuraUploadId: started.id,
      kuraObjectId: started.object_id,
      kuraPartSize: started.part_size,
      kuraPartCount: started.part_count,
      kuraTier: batch.tier,
    });
    return started;
  }

  let lastBatch = null;

  // Runs before the uploader for every upload and retry: creates the server upload of each
  // new file (so getChunkSize knows the server's part size), and points a retried file at
  // its existing upload so only the missing parts are sent again.
  async function createServerUploads(fileIDs) {
    let batch;
    const batchOnce = () => {
      if (batch === undefined) batch = readBatch() || lastBatch;
      if (batch) lastBatch = batch;
      return batch;
    };
    await Promise.all(
      fileIDs.map(async (fileID) => {
        const file = uppy.getFile(fileID);
        if (!file || file.error || file.progress.uploadComplete) return;
        fileDigest(file);
        if (file.meta.kuraUploadId) {
          if (!file.s3Multipart || !file.s3Multipart.uploadId) {
            const id = String(file.meta.kuraUploadId);
            uppy.setFileState(fileID, { s3Multipart: { uploadId: id, key: id } });
          }
          resultRow(uppy.getFile(fileID));
          return;
        }
        if (!batchOnce()) {
          uppy.emit("upload-error", file, new Error(strings.chooseRecord));
          return;
        }
        uppy.emit("preprocess-progress", file, { mode: "indeterminate", message: strings.preparing });
        try {
          await startServerUpload(file, batch);
          resultRow(uppy.getFile(fileID));
        } catch (err) {
          uppy.emit("upload-error", uppy.getFile(fileID), err);
        } finally {
          uppy.emit("preprocess-complete", uppy.getFile(fileID));
        }
      }),
    );
  }
  uppy.addPreProcessor(createServerUploads);

  // --- Digests, computed in Web Workers ------------------------------------------------

  const MD5_WORKERS = 2; // parts hashed by themselves (see partMd5For)
  const hashJobs = new Map(); // job id -> {resolve, reject, onEvent, worker}
  const md5Workers = [];
  let digestWorker = null;
  let nextJob = 1;
  let nextMd5Worker = 0;

  function hasherStart() {
    const worker = new Worker(config.hasher_url);
    worker.postMessage({ type: "init", scripts: config.hash_library_urls });
    worker.onmessage = (event) => {
      const { id } = event.data;
      const job = hashJobs.get(id);
      if (!job) return;
      if ("progress" in event.data || "part" in event.data || "started" in event.data) {
        if (job.onEvent) job.onEvent(event.data);
        return;
      }
      hashJobs.delete(id);
      if (event.data.error) job.reject(new Error(event.data.error));
      else if (event.data.cancelled) job.reject(new DOMException("Cancelled", "AbortError"));
      else job.resolve("digest" in event.data ? event.data.digest : event.data.md5);
    };
    // The script or hash-wasm could not be loaded: this worker answers nothing more, so
    // its jobs and later ones fail at once (the file goes up without digests).
    worker.onerror = (event) => {
      event.preventDefault();
      worker.broken = true;
      for (const [id, job] of hashJobs) {
        if (job.worker !== worker) continue;
        hashJobs.delete(id);
        job.reject(new Error(event.message || "hash worker error"));
      }
    };
    return worker;
  }

  function hasherRun(worker, message, onEvent) {
    const id = nextJob++;
    return {
      id,
      promise: new Promise((resolve, reject) => {
        if (worker.broken) {
          reject(new Error("hash worker unavailable"));
          return;
        }
        hashJobs.set(id, { resolve, reject, onEvent, worker });
        worker.postMessage({ ...message, id });
      }),
    };
  }

  /** The base64 MD5 of one part (its Content-MD5), or null when the browser cannot hash. */
  async function partMd5(body) {
    if (!config.hasher_url || typeof Worker === "undefined") return null;
    try {
      if (md5Workers.length < MD5_WORKERS) md5Workers.push(hasherStart());
      const worker = md5Workers[nextMd5Worker++ % md5Workers.length];
      return await hasherRun(worker, { type: "md5", blob: body }).promise;
    } catch (err) {
      uppy.log(`[Kura] no MD5 for this part: ${err}`, "warning");
      return null;
    }
  }

  // The whole file's SHA-256 and each part's MD5, from one read of the file in the digest
  // worker: one job per Uppy file, Blob and part size (a ghost filled in again gets a new
  // one). The promise never rejects: it gives null when there is no digest to send.
  const fileDigests = new Map(); // Uppy file id -> {data, partSize, promise, jobId, md5s, …}
  // A part the digest job has not reached is hashed by itself in an MD5 worker (on the
  // other core) unless the job will get there within this many parts.
  const DIGEST_WAIT_PARTS = 2;

  function fileDigest(file) {
    const current = uppy.getFile(file.id) || file;
    const data = current.data;
    const partSize = partSizeFor(current);
    let digest = fileDigests.get(current.id);
    if (digest && digest.data === data && digest.partSize === partSize) return digest.promise;
    if (digest) digestEnd(digest, true);
    if (!data || !config.hasher_url || typeof Worker === "undefined" || current.isGhost) {
      fileDigests.delete(current.id);
      return Promise.resolve(null);
    }
    digest = {
      data,
      partSize,
      jobId: null,
      started: false,
      ended: false,
      done: false,
      failed: false,
      progress: 0,
      partsDone: 0,
      md5s: new Map(), // part number -> base64 MD5
      waiters: new Map(), // part number -> [resolve]
    };
    fileDigests.set(current.id, digest);
    try {
      if (!digestWorker) digestWorker = hasherStart();
      const job = hasherRun(digestWorker, { type: "digest", blob: data, partSize }, (message) => {
        if ("started" in message) {
          digest.started = true;
        } else if ("part" in message) {
          digest.md5s.set(message.part, message.md5);
          digest.partsDone = message.part;
          for (const resolve of digest.waiters.get(message.part) || []) resolve(message.md5);
          digest.waiters.delete(message.part);
        } else {
          digest.progress = data.size ? message.progress / data.size : 1;
          showDigestProgress(current.id, digest);
        }
      });
      digest.jobId = job.id;
      digest.promise = job.promise.then(
        (sha256) => {
          digest.done = true;
          digest.progress = 1;
          digestEnd(digest, false);
          showDigestProgress(current.id, digest);
          return sha256;
        },
        (err) => {
          digestEnd(digest, false);
          if (!(err && err.name === "AbortError")) {
            digest.failed = true;
            uppy.log(`[Kura] no SHA-256 for ${current.name}: ${err}`, "warning");
            showDigestProgress(current.id, digest);
          }
          return null;
        },
      );
    } catch (err) {
      digest.failed = true;
      digestEnd(digest, false);
      digest.promise = Promise.resolve(null);
      showDigestProgress(current.id, digest);
    }
    showDigestProgress(current.id, digest);
    return digest.promise;
  }

  /** The job gives no more MD5s: parts still waiting are hashed by themselves. */
  function digestEnd(digest, cancel) {
    if (cancel && !digest.ended && digest.jobId && digestWorker) {
      digestWorker.postMessage({ type: "cancel", id: digest.jobId });
    }
    digest.ended = true;
    for (const resolvers of digest.waiters.values()) for (const resolve of resolvers) resolve(null);
    digest.waiters.clear();
  }

  function fileDigestForget(fileID) {
    const digest = fileDigests.get(fileID);
    if (digest) digestEnd(digest, !digest.done);
    fileDigests.delete(fileID);
  }

  /** Part `number`'s MD5 (base64) for its Content-MD5, or null when it cannot be had.
   * `patient`: nobody waits for this part yet (it is signed ahead), so it waits for the
   * digest job however far behind that is, rather than hashing the part a second time. */
  async function partMd5For(fileID, data, partSize, number, body, patient = false) {
    const digest = fileDigests.get(fileID);
    if (digest && digest.data === data && digest.partSize === partSize) {
      if (digest.md5s.has(number)) return digest.md5s.get(number);
      const near = patient || number <= digest.partsDone + DIGEST_WAIT_PARTS;
      if (!digest.ended && digest.started && near) {
        const md5 = await new Promise((resolve) => {
          if (!digest.waiters.has(number)) digest.waiters.set(number, []);
          digest.waiters.get(number).push(resolve);
        });
        if (md5) return md5;
      }
    }
    return partMd5(body);
  }

  // --- Signing parts ----------------------------------------------------------------------

  // Uppy runs signPart inside its six request slots, so a part signed only when Uppy asks
  // for it keeps a slot busy for its MD5 and a round trip to Kura while no bytes move
  // (measured on a 512 MiB upload: sign requests of 0.2-0.7 s took turns with the PUTs,
  // 3.8 PUTs in flight on average instead of 6). So each upload has a signer that hashes
  // and signs the next parts ahead, SIGN_BATCH per request, while earlier parts are on
  // the way: Uppy's request for a part is then usually answered at once. Each URL is still
  // bound to its part's MD5; a part is signed ahead only once (a retried part is hashed
  // from Uppy's bytes and signed again), never when the server listed it as stored, and a
  // URL is not handed out after half its lifetime (the PUT must still get there in time).
  // Signing ahead waits for the digest job's MD5s (no part is hashed twice); a part Uppy
  // already waits for is hashed by itself if the job is far from it. On a loaded machine
  // one signing request took up to 6 s while six PUTs finished in 2 s: hence 24 ahead.
  const SIGN_BATCH = 6; // parts per signing request
  const SIGN_AHEAD = 24; // parts signed beyond the one Uppy asked for, at most
  const signers = new Map(); // Kura upload id -> signer
  const partUrls = new Map(); // signed URL -> "<upload id>:<part number>"
  const partRefusals = new Map(); // "<upload id>:<part number>" -> 403s so far

  /** Resolves as `promise` does, or rejects with an AbortError when `signal` aborts first. */
  function abortable(promise, signal) {
    if (!signal) return promise;
    if (signal.aborted) return Promise.reject(new DOMException("Aborted", "AbortError"));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new DOMException("Aborted", "AbortError"));
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  class PartSigner {
    constructor(uploadId, fileID) {
      this.uploadId = uploadId;
      this.fileID = fileID;
      this.stored = new Set(); // parts the server listed as stored
      this.handed = new Set(); // parts whose URL went to Uppy: only Uppy asks for them again
      this.signed = new Map(); // part number -> {part, freshUntil}
      this.pending = new Map(); // part number -> the promise of its signing request
      this.aborter = new AbortController();
    }

    /** The file's Blob, part size and part count, or null (a ghost has no bytes). */
    layout() {
      const file = uppy.getFile(this.fileID);
      if (!file || !file.data || file.isGhost) return null;
      const partSize = partSizeFor(file);
      return { data: file.data, partSize, count: Math.max(1, Math.ceil(file.size / partSize)) };
    }

    /** Up to `count` parts after `after` that nobody has signed, within the look-ahead. */
    following(after, count, layout) {
      const numbers = [];
      const last = Math.min(layout.count, after + SIGN_AHEAD);
      for (let n = after + 1; n <= last && numbers.length < count; n++) {
        if (!this.stored.has(n) && !this.handed.has(n) && !this.signed.has(n) && !this.pending.has(n)) {
          numbers.push(n);
        }
      }
      return numbers;
    }

    /** One signing request for `numbers`, each with its MD5 (`bodies` has Uppy's own);
     * `patient` when Uppy is not waiting for any of them. */
    request(numbers, bodies, layout, patient = false) {
      const promise = (async () => {
        const md5s = await Promise.all(
          numbers.map((n) => {
            if (!layout) return partMd5(bodies.get(n));
            const { data, partSize } = layout;
            const body = bodies.get(n) || data.slice((n - 1) * partSize, n * partSize);
            return partMd5For(this.fileID, data, partSize, n, body, patient);
          }),
        );
        const parts = numbers.map((n, i) => (md5s[i] ? { part_number: n, md5: md5s[i] } : { part_number: n }));
        const answer = await api("POST", uploadUrl(this.uploadId, "/parts"), { parts }, this.aborter.signal);
        const freshUntil = Date.now() + ((answer.expires_in || 60) * 1000) / 2;
        for (const part of answer.parts) {
          if (numbers.includes(part.part_number)) this.signed.set(part.part_number, { part, freshUntil });
        }
      })();
      for (const n of numbers) this.pending.set(n, promise);
      const settled = () => {
        for (const n of numbers) if (this.pending.get(n) === promise) this.pending.delete(n);
      };
      promise.then(settled, settled);
      return promise;
    }

    /** The URL of part `n`, signed ahead or now (with the parts after it). */
    async take(n, body) {
      const layout = this.layout();
      for (let attempt = 0; ; attempt++) {
        const entry = this.signed.get(n);
        if (entry) {
          this.signed.delete(n);
          if (entry.freshUntil > Date.now()) {
            this.handed.add(n);
            if (layout) this.ahead(n, layout);
            return entry.part;
          }
        }
        const pending = this.pending.get(n);
        if (pending && attempt === 0) {
          await pending;
          continue;
        }
        const numbers = [n, ...(layout ? this.following(n, SIGN_BATCH - 1, layout) : [])];
        await this.request(numbers, new Map([[n, body]]), layout);
        const signed = this.signed.get(n);
        if (!signed) throw new Error(strings.serverError);
        this.signed.delete(n);
        this.handed.add(n);
        if (layout) this.ahead(n, layout);
        return signed.part;
      }
    }

    /** Signs the next parts in the background when fewer than a batch are ready. */
    ahead(n, layout) {
      if (this.aborter.signal.aborted) return;
      let ready = 0;
      for (let k = n + 1; k <= n + SIGN_AHEAD; k++) if (this.signed.has(k) || this.pending.has(k)) ready++;
      if (ready > SIGN_AHEAD - SIGN_BATCH) return;
      const numbers = this.following(n, SIGN_BATCH, layout);
      if (!numbers.length) return;
      this.request(numbers, new Map(), layout, true).catch((err) => {
        // Uppy asks for these parts itself when their turn comes.
        if (!(err && err.name === "AbortError")) uppy.log(`[Kura] signing ahead failed: ${err}`, "warning");
      });
    }
  }

  function signerFor(uploadId, fileID) {
    let signer = signers.get(uploadId);
    if (!signer || signer.fileID !== fileID) {
      if (signer) signer.aborter.abort();
      signer = new PartSigner(uploadId, fileID);
      signers.set(uploadId, signer);
    }
    return signer;
  }

  function signerForget(uploadId) {
    const signer = signers.get(uploadId);
    if (signer) signer.aborter.abort();
    signers.delete(uploadId);
  }

  async function signPart(file, { uploadId, partNumber, body, signal }) {
    const part = await abortable(signerFor(uploadId, file.id).take(partNumber, body), signal);
    partUrls.set(part.url, `${uploadId}:${partNumber}`);
    return { method: "PUT", url: part.url, headers: part.headers || {} };
  }

  // Uppy signs and sends a part again when the store refused it with 400 (a Content-MD5
  // that does not match the bytes: corrupted on the way) or when its URL expired (403,
  // "Request has expired"). Any 403 from the store is taken for an expired URL (stores word
  // it differently, and a laptop asleep during a pause wakes up with stale URLs), a few
  // times per part, so a persistent refusal still ends in an error instead of a loop.
  //
  // The browser reports a PUT's progress every 50 ms, and each report becomes a new Uppy
  // state (the file's progress, Golden Retriever's saved copy, a dashboard render): with
  // six PUTs, 120 a second. A part's reports go to Uppy at most every PART_PROGRESS_MS (the
  // last one, at the end of the PUT, always does), since each carries the bytes sent so far
  // and not an increment, nothing is lost.
  const PART_PROGRESS_MS = 500;

  function throttledProgress(onProgress, size) {
    if (!onProgress) return onProgress;
    let last = -Infinity;
    return (event) => {
      const now = performance.now();
      if (event.loaded >= size || now - last >= PART_PROGRESS_MS) {
        last = now;
        onProgress(event);
      }
    };
  }

  async function uploadPartBytes(options) {
    const url = options.signature && options.signature.url;
    const part = partUrls.get(url);
    partUrls.delete(url);
    const size = options.size ?? (options.body ? options.body.size : 0);
    try {
      return await AwsS3.uploadPartBytes({ ...options, onProgress: throttledProgress(options.onProgress, size) });
    } catch (err) {
      if (!err || err.name === "AbortError" || !err.source) throw err;
      const { status } = err.source;
      if (status === 403) {
        const refusals = (partRefusals.get(part) || 0) + 1;
        partRefusals.set(part, refusals);
        // "Request has expired" is what makes Uppy sign the part again.
        const refused = new Error(refusals <= PART_REFUSALS ? "Request has expired" : strings.partRefused);
        refused.source = { status: 403 };
        throw refused;
      }
      // Uppy reads only the status to decide on a retry; the message is what the row shows.
      const failure = new Error(status >= 400 ? strings.partRefused : strings.serverError);
      failure.source = err.source;
      throw failure;
    }
  }

  const abortedUploads = new Set();

  /** Abort Kura's upload of a file the user removed (never one that completed). */
  function abortServerUpload(file) {
    const uploadId = file && file.meta.kuraUploadId;
    if (!uploadId || file.progress.uploadComplete || abortedUploads.has(uploadId)) return Promise.resolve();
    abortedUploads.add(uploadId);
    signerForget(String(uploadId));
    removeResultRow(file.id);
    return api("DELETE", uploadUrl(uploadId)).catch(() => {
      // Already gone, or the server is away: the beat task aborts abandoned uploads.
    });
  }

  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: 6, // requests at once, per the browser's HTTP/1.1 limit per origin
    // Per part: a refused or lost part is signed and sent again after each delay.
    retryDelays: [0, 1000, 3000, 5000, 10000],
    getChunkSize: (data) => partSizeFor(fileForData(data)),
    uploadPartBytes,

    async createMultipartUpload(file) {
      let current = uppy.getFile(file.id) || file;
      if (!current.meta.kuraUploadId) {
        const batch = readBatch() || lastBatch;
        if (!batch) throw new Error(strings.chooseRecord);
        await startServerUpload(current, batch);
        current = uppy.getFile(file.id);
      }
      fileDigest(current);
      const id = String(current.meta.kuraUploadId);
      return { uploadId: id, key: id };
    },

    signPart,

    async listParts(file, { uploadId, signal }) {
      let answer;
      try {
        answer = await api("GET", uploadUrl(uploadId, "/parts"), undefined, signal);
      } catch (err) {
        if (err instanceof ApiError && (err.status === 400 || err.status === 404)) {
          // The server no longer has this upload (aborted, expired): Retry starts afresh.
          uppy.setFileMeta(file.id, { kuraUploadId: null, kuraObjectId: null, kuraPartSize: null });
          uppy.setFileState(file.id, { s3Multipart: undefined });
          signerForget(uploadId);
        }
        throw err;
      }
      // The signer leaves these out when it signs ahead.
      signerFor(uploadId, file.id).stored = new Set(answer.parts.map((part) => part.part_number));
      return answer.parts.map((part) => ({ PartNumber: part.part_number, Size: part.size, ETag: part.etag }));
    },

    async completeMultipartUpload(file, { uploadId, parts, signal }) {
      const digest = await fileDigest(file); // {sha256} or {parts_sha256}, or null
      if (signal && signal.aborted) throw new DOMException("Aborted", "AbortError");
      const body = { parts: parts.map((part) => ({ part_number: part.PartNumber, etag: part.ETag })) };
      if (digest) Object.assign(body, digest);
      const answer = await api("POST", uploadUrl(uploadId, "/complete"), body, signal);
      signerForget(uploadId);
      for (const key of partRefusals.keys()) if (key.startsWith(`${uploadId}:`)) partRefusals.delete(key);
      return {
        location: new URL(objectPageUrl(answer.object_id), window.location.href).href,
        objectId: answer.object_id,
        checksumState: answer.checksum_state,
      };
    },

    // Uppy calls this when a file is removed mid-upload, and also after an upload failed
    // for good. Keep the server's upload in the second case (the file is still listed), so
    // Retry sends only the missing parts.
    async abortMultipartUpload(file) {
      if (uppy.getFile(file.id)) return;
      await abortServerUpload(file);
    },
  });

  // A file removed after it failed has no uploader any more: abort its upload here too.
  uppy.on("file-removed", (file) => {
    fileDigestForget(file.id);
    removeResultRow(file.id);
    abortServerUpload(file);
  });

  // --- The results list: upload progress, then the checksum state -------------------------

  const rows = new Map(); // Uppy file id -> <li>

  function resultRow(file) {
    if (!file) return null;
    let row = rows.get(file.id);
    if (!row) {
      row = document.createElement("li");
      row.className = "upload-result";
      row.dataset.fileId = file.id;
      const name = document.createElement("span");
      name.className = "upload-filename filename";
      name.textContent = file.name;
      const state = document.createElement("span");
      state.className = "checksum-state state state-uploading";
      state.textContent = strings.uploading;
      const progress = document.createElement("progress");
      progress.className = "upload-progress";
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", strings.progressLabel.replace("%(name)s", file.name));
      const hash = document.createElement("span");
      hash.className = "upload-hash muted";
      hash.hidden = true;
      const errors = document.createElement("ul");
      errors.className = "field-errors upload-errors";
      row.append(name, " ", state, progress, hash, errors);
      results.append(row);
      rows.set(file.id, row);
      resultsEmpty.hidden = true;
      const digest = fileDigests.get(file.id);
      if (digest) showDigestProgress(file.id, digest);
    }
    if (file.meta.kuraObjectId) row.dataset.objectId = String(file.meta.kuraObjectId);
    return row;
  }

  /** The browser's SHA-256 of the file: its progress, then whether it will be sent. */
  function showDigestProgress(fileID, digest) {
    const row = rows.get(fileID);
    const element = row && row.querySelector(".upload-hash");
    if (!element) return;
    element.hidden = false;
    if (digest.failed) {
      element.dataset.state = "failed";
      element.textContent = strings.hashFailed;
    } else if (digest.done) {
      element.dataset.state = "done";
      element.textContent = strings.hashed;
    } else {
      const percent = Math.floor(100 * (digest.progress || 0));
      element.dataset.state = "hashing";
      element.textContent = strings.hashing.replace("%(progress)s", String(percent)).replace("%%", "%");
    }
  }

  /** A button in the row that opens the file chooser, to give an interrupted upload its file. */
  const reselectInput = document.createElement("input");
  reselectInput.type = "file";
  reselectInput.multiple = true;
  reselectInput.hidden = true;
  reselectInput.className = "upload-reselect-input";
  document.body.append(reselectInput);
  reselectInput.addEventListener("change", () => {
    const chosen = [...reselectInput.files];
    reselectInput.value = "";
    for (const data of chosen) {
      try {
        uppy.addFile({ name: data.name, type: data.type, data, source: "Kura" });
      } catch (err) {
        uppy.log(err, "warning"); // Uppy already told the user (restrictions)
      }
    }
  });

  function showReselect(row, file) {
    let button = row.querySelector(".upload-reselect");
    if (!file.isGhost) {
      if (button) button.remove();
      return;
    }
    if (button) return;
    button = document.createElement("button");
    button.type = "button";
    button.className = "button button-small upload-reselect";
    button.textContent = strings.reselect;
    button.setAttribute("aria-label", strings.reselectLabel.replace("%(name)s", file.name));
    button.addEventListener("click", () => reselectInput.click());
    row.insertBefore(button, row.querySelector(".upload-errors"));
  }

  // Uppy's own "Re-select" only opens its panel; let it open the file chooser as well.
  document.getElementById("uppy-dashboard").addEventListener("click", (event) => {
    if (event.target.closest(".uppy-Dashboard-Item-reSelect")) reselectInput.click();
  });

  function removeResultRow(fileID) {
    const row = rows.get(fileID);
    if (row && !row.dataset.stored) {
      row.remove();
      rows.delete(fileID);
      resultsEmpty.hidden = rows.size > 0;
    }
  }

  function setState(row, state, text) {
    const element = row.querySelector(".checksum-state");
    element.className = `checksum-state state state-${state}`;
    element.dataset.state = state;
    element.textContent = text;
  }

  function showUploadError(file, err) {
    const row = resultRow(file);
    if (!row) return;
    const messages = err && err.messages && err.messages.length ? err.messages : [err?.message || strings.serverError];
    setState(row, "failed", strings.uploadFailed);
    row.querySelector(".upload-errors").replaceChildren(
      ...messages.map((message) => {
        const li = document.createElement("li");
        li.textContent = message;
        return li;
      }),
    );
  }

  function clearUploadError(row) {
    row.querySelector(".upload-errors").replaceChildren();
  }

  uppy.on("upload-progress", (file, progress) => {
    const current = uppy.getFile(file.id) || file;
    const row = resultRow(current);
    if (!row || !progress.bytesTotal || row.dataset.stored) return;
    const bar = row.querySelector(".upload-progress");
    bar.value = Math.floor((100 * progress.bytesUploaded) / progress.bytesTotal);
    // Requests still in flight report progress after a pause: paused stays paused.
    const wanted = current.isPaused ? "paused" : "uploading";
    if (row.querySelector(".checksum-state").dataset.state !== wanted) {
      setState(row, wanted, strings[wanted]);
      clearUploadError(row);
    }
  });

  // Kura's rows follow Uppy's pause and resume, for one file or all of them.
  function showPaused(file, paused) {
    const row = file && rows.get(file.id);
    if (!row || row.dataset.stored || file.error || file.progress.uploadComplete) return;
    setState(row, paused ? "paused" : "uploading", paused ? strings.paused : strings.uploading);
  }
  uppy.on("upload-pause", (file, paused) => showPaused(uppy.getFile(file.id) || file, paused));
  uppy.on("pause-all", () => {
    for (const file of uppy.getFiles()) if (file.progress.uploadStarted) showPaused(file, true);
  });
  uppy.on("resume-all", () => {
    for (const file of uppy.getFiles()) if (file.progress.uploadStarted) showPaused(file, false);
  });

  uppy.on("upload-error", (file, err) => {
    if (file) showUploadError(uppy.getFile(file.id) || file, err);
  });

  function showRetrying(file) {
    const row = file && rows.get(file.id);
    if (row && !row.dataset.stored) {
      setState(row, "uploading", strings.uploading);
      clearUploadError(row);
    }
  }
  uppy.on("upload-retry", showRetrying);
  uppy.on("retry-all", (files) => (files || []).forEach(showRetrying));

  // After a failed batch Uppy shows only "Retry"; once files are added, the failed ones
  // join them as files to upload (they continue their server uploads), so "Upload" sends
  // both. A ghost given its file again says so in its row.
  uppy.on("files-added", (added) => {
    for (const file of added) {
      const row = rows.get(file.id);
      const current = uppy.getFile(file.id);
      const interrupted = row && row.querySelector(".checksum-state").dataset.state === "interrupted";
      if (interrupted && current && !row.dataset.stored) {
        setState(row, "interrupted", current.isGhost ? strings.interruptedGhost : strings.interrupted);
        showReselect(row, current);
      }
    }
    const { error, currentUploads } = uppy.getState();
    const uploading = Object.keys(currentUploads || {}).length > 0;
    if (!error || uploading) return;
    for (const file of uppy.getFiles()) {
      if (file.error && !file.progress.uploadComplete) {
        uppy.setFileState(file.id, { error: null, progress: { ...file.progress, uploadStarted: null } });
        const row = rows.get(file.id);
        if (row && !row.dataset.stored) {
          setState(row, "waiting", strings.waiting);
        }
      }
    }
    uppy.setState({ error: null });
  });

  uppy.on("upload-success", (file, response) => {
    const current = uppy.getFile(file.id) || file;
    const objectId = response?.body?.objectId || current.meta.kuraObjectId;
    markStored(current, objectId, response?.body?.checksumState || "pending");
  });

  function markStored(file, objectId, checksumState) {
    const row = resultRow(file);
    if (!row || !objectId) return;
    row.dataset.objectId = String(objectId);
    row.dataset.stored = "true";
    row.querySelector(".upload-progress").remove();
    const name = row.querySelector(".upload-filename");
    const link = document.createElement("a");
    link.href = objectPageUrl(objectId);
    link.textContent = file.name;
    link.className = name.className;
    name.replaceWith(link);
    if (config.reviewed_tiers.includes(file.meta.kuraTier)) {
      const note = document.createElement("span");
      note.className = "upload-note muted";
      note.textContent = strings.reviewPending;
      row.append(note);
    }
    showChecksum(row, { checksum_state: checksumState, checksum_progress: 0 });
    pollChecksum(row, objectId);
  }

  function showChecksum(row, object) {
    const state = object.checksum_state;
    if (state === "verifying") {
      const progress = Math.round(object.checksum_progress || 0);
      const text = strings.verifying.replace("%(progress)s", String(progress)).replace("%%", "%");
      setState(row, "verifying", text);
    } else if (state === "verified") {
      // "end_to_end": the browser's SHA-256 matched the stored bytes; "at_rest": only the
      // stored bytes were hashed (no digest was sent).
      const integrity = object.integrity;
      const text = { end_to_end: strings.verifiedEndToEnd, at_rest: strings.verifiedAtRest }[integrity];
      setState(row, state, text || strings.verified);
      if (integrity) row.querySelector(".checksum-state").dataset.integrity = integrity;
    } else if (state in strings) {
      setState(row, state, strings[state]);
    }
    if (state === "verified" && object.sha256 && !row.querySelector("code.sha256")) {
      const digest = document.createElement("span");
      digest.className = "upload-digest";
      const label = document.createElement("span");
      label.className = "muted";
      label.textContent = "SHA-256";
      const code = document.createElement("code");
      code.className = "sha256 checksum";
      code.textContent = object.sha256;
      digest.append(label, " ", code);
      row.insertBefore(digest, row.querySelector(".upload-errors"));
    }
    // The same SHA-256 is already in the record: say so, with the original and the place
    // (this object's page) where the uploader keeps or deletes the copy.
    if (state === "verified" && object.duplicate_of && !row.querySelector(".upload-duplicate")) {
      const notice = document.createElement("span");
      notice.className = "upload-duplicate";
      const original = document.createElement("a");
      original.href = objectPageUrl(object.duplicate_of);
      original.textContent = strings.duplicateOriginal.replace("%(id)s", String(object.duplicate_of));
      const decide = document.createElement("a");
      decide.href = objectPageUrl(object.id);
      decide.textContent = strings.duplicateDecide;
      notice.append(strings.duplicate, " ", original, " — ", decide);
      row.insertBefore(notice, row.querySelector(".upload-errors"));
    }
  }

  function pollChecksum(row, objectId) {
    let failures = 0;
    const poll = async () => {
      try {
        const object = await api("GET", objectUrl(objectId));
        failures = 0;
        showChecksum(row, object);
        if (object.checksum_state === "verified" || object.checksum_state === "failed") return;
      } catch (err) {
        failures += 1;
        if ((err && err.status === 404) || failures >= MAX_POLL_FAILURES) {
          row.querySelector(".upload-errors").replaceChildren(
            Object.assign(document.createElement("li"), { textContent: strings.checksumUnavailable }),
          );
          return;
        }
      }
      window.setTimeout(poll, POLL_INTERVAL_MS);
    };
    window.setTimeout(poll, POLL_INTERVAL_MS);
  }

  // After a reload Golden Retriever brings the files back; show the ones already stored
  // (their checksums may still be running) and those waiting to be resumed.
  uppy.on("restored", () => {
    for (const file of uppy.getFiles()) {
      if (!file.meta.kuraUploadId) continue;
      if (file.progress.uploadComplete) {
        markStored(file, file.meta.kuraObjectId, "pending");
        continue;
      }
      const row = resultRow(file);
      const { bytesUploaded, bytesTotal } = file.progress;
      if (bytesTotal) row.querySelector(".upload-progress").value = Math.floor((100 * bytesUploaded) / bytesTotal);
      setState(row, "interrupted", file.isGhost ? strings.interruptedGhost : strings.interrupted);
      showReselect(row, file);
    }
  });
})();
