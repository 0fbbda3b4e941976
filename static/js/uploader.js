/* Kura 蔵 — the browser upload page (/projects/<id>/upload/).
 *
 * Uppy (static/vendor/uppy-5.2.4, global `Uppy`) draws the dashboard and moves the bytes;
 * this file connects it to Kura's upload API (ARCHITECTURE.md, "Upload and checksum flow"):
 *
 *   preprocessor           POST /api/v1/uploads/             one server upload per file
 *   createMultipartUpload  (the upload made by the preprocessor)
 *   signPart               POST /api/v1/uploads/<id>/parts   presigned part URLs, in batches
 *   (Uppy)                 PUT <url>                          part bytes straight to storage
 *   listParts              GET  /api/v1/uploads/<id>/parts   parts already stored (resume)
 *   completeMultipartUpload POST /api/v1/uploads/<id>/complete
 *   abortMultipartUpload   DELETE /api/v1/uploads/<id>       only when the user removes a file
 *   then                   GET  /api/v1/objects/<object_id>/ every 1.5 s until verified/failed
 *
 * Resume after a reload: Golden Retriever keeps Uppy's state (each file's meta, which
 * carries Kura's upload id, and the multipart state) in localStorage under an id per user
 * and project. Files larger than 10 MiB come back as "ghosts"; adding the same file again
 * (same name, size, type and modification time) fills the ghost in, and the upload
 * continues after the parts the server lists as stored.
 *
 * No build step: plain ES2020 in an IIFE.
 */
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const strings = JSON.parse(document.getElementById("upload-i18n").textContent);
  const POLL_INTERVAL_MS = 1500;
  const SIGN_BATCH = 16; // part URLs asked for at once
  const MAX_POLL_FAILURES = 5;

  const form = document.getElementById("upload-batch");
  const recordSelect = document.getElementById("upload-record");
  const tierSelect = document.getElementById("upload-tier");
  const dateField = document.getElementById("upload-available-date-field");
  const dateInput = document.getElementById("upload-available-date");
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

  async function api(method, url, body, signal) {
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
      const offline = new Error(strings.serverError);
      offline.source = { status: 0 }; // retried by Uppy
      throw offline;
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

  const uploadUrl = (uploadId, suffix = "") => `${config.uploads_url}${uploadId}${suffix}`;
  const objectUrl = (objectId) => `${config.objects_url}${objectId}/`;
  const objectPageUrl = (objectId) => config.object_page_url.replace("{id}", String(objectId));

  // --- The batch form -----------------------------------------------------------------

  function showDateField() {
    const embargoed = tierSelect.value === "embargoed";
    dateField.hidden = !embargoed;
    dateInput.required = embargoed;
  }
  tierSelect.addEventListener("change", showDateField);
  showDateField();

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
    const availableDate = tier === "embargoed" ? dateInput.value : "";
    const recordOk = record !== "";
    const dateOk = tier !== "embargoed" || (availableDate !== "" && availableDate >= dateInput.min);
    setFieldErrors("upload-record", recordOk ? [] : [strings.chooseRecord]);
    setFieldErrors("upload-available-date", dateOk ? [] : [strings.chooseDate]);
    if (!recordOk) recordSelect.focus();
    else if (!dateOk) dateInput.focus();
    if (!recordOk || !dateOk) return null;
    return {
      record: record === "none" ? null : Number(record),
      tier,
      available_date: availableDate || null,
    };
  }
  recordSelect.addEventListener("change", () => setFieldErrors("upload-record", []));
  dateInput.addEventListener("change", () => setFieldErrors("upload-available-date", []));

  // --- Uppy ---------------------------------------------------------------------------

  const { Uppy: UppyCore, Dashboard, AwsS3, GoldenRetriever } = window.Uppy;
  const language = document.documentElement.lang || "en";
  const uppyLocale = language.startsWith("ja") ? window.Uppy.locales.ja_JP : undefined;

  const uppy = new UppyCore({
    id: config.uppy_id,
    autoProceed: false,
    allowMultipleUploadBatches: true,
    restrictions: { minFileSize: 1, maxFileSize: config.max_file_size },
    ...(uppyLocale ? { locale: uppyLocale } : {}),
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

  /** The part size Kura's server chose; the same rule as repository/uploads.py otherwise. */
  function partSizeFor(file) {
    if (file && file.meta.kuraPartSize) return file.meta.kuraPartSize;
    const size = file ? file.size : 0;
    const MiB = 1024 * 1024;
    const needed = Math.ceil(size / config.max_parts);
    return Math.max(config.min_part_size, Math.ceil(needed / MiB) * MiB);
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

  // Presigned URLs, fetched SIGN_BATCH at a time; each is handed out once (a retry asks again).
  const signedParts = new Map(); // upload id -> Map(part number -> {url, staleAfter})
  const signing = new Map(); // upload id -> the batch request in flight

  async function fetchPartUrls(file, uploadId, partNumber, signal) {
    const cache = signedParts.get(uploadId);
    const partCount = uppy.getFile(file.id)?.meta.kuraPartCount || partNumber;
    const wanted = [];
    for (let n = partNumber; n <= partCount && wanted.length < SIGN_BATCH; n++) {
      if (n === partNumber || !cache.has(n)) wanted.push(n);
    }
    const answer = await api("POST", uploadUrl(uploadId, "/parts"), { part_numbers: wanted }, signal);
    const staleAfter = Date.now() + answer.expires_in * 800; // 80 % of their lifetime
    for (const part of answer.parts) cache.set(part.part_number, { url: part.url, staleAfter });
  }

  async function signPart(file, { uploadId, partNumber, signal }) {
    if (!signedParts.has(uploadId)) signedParts.set(uploadId, new Map());
    const cache = signedParts.get(uploadId);
    for (let attempt = 0; attempt < 4; attempt++) {
      const signed = cache.get(partNumber);
      if (signed && signed.staleAfter > Date.now()) {
        cache.delete(partNumber);
        return { method: "PUT", url: signed.url };
      }
      const inFlight = signing.get(uploadId);
      if (inFlight) {
        await inFlight.catch(() => {});
        if (cache.has(partNumber)) continue;
      }
      const request = fetchPartUrls(file, uploadId, partNumber, signal);
      signing.set(uploadId, request);
      try {
        await request;
      } finally {
        if (signing.get(uploadId) === request) signing.delete(uploadId);
      }
    }
    throw new Error(strings.serverError);
  }

  const abortedUploads = new Set();

  /** Abort Kura's upload of a file the user removed (never one that completed). */
  function abortServerUpload(file) {
    const uploadId = file && file.meta.kuraUploadId;
    if (!uploadId || file.progress.uploadComplete || abortedUploads.has(uploadId)) return Promise.resolve();
    abortedUploads.add(uploadId);
    signedParts.delete(String(uploadId));
    removeResultRow(file.id);
    return api("DELETE", uploadUrl(uploadId)).catch(() => {
      // Already gone, or the server is away: the beat task aborts abandoned uploads.
    });
  }

  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: 6, // requests at once, per the browser's HTTP/1.1 limit per origin
    retryDelays: [0, 1000, 3000, 5000, 10000],
    getChunkSize: (data) => partSizeFor(fileForData(data)),

    async createMultipartUpload(file) {
      let current = uppy.getFile(file.id) || file;
      if (!current.meta.kuraUploadId) {
        const batch = readBatch() || lastBatch;
        if (!batch) throw new Error(strings.chooseRecord);
        await startServerUpload(current, batch);
        current = uppy.getFile(file.id);
      }
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
        }
        throw err;
      }
      return answer.parts.map((part) => ({ PartNumber: part.part_number, Size: part.size, ETag: part.etag }));
    },

    async completeMultipartUpload(file, { uploadId, parts, signal }) {
      const answer = await api(
        "POST",
        uploadUrl(uploadId, "/complete"),
        { parts: parts.map((part) => ({ part_number: part.PartNumber, etag: part.ETag })) },
        signal,
      );
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
      const errors = document.createElement("ul");
      errors.className = "field-errors upload-errors";
      row.append(name, " ", state, progress, errors);
      results.append(row);
      rows.set(file.id, row);
      resultsEmpty.hidden = true;
    }
    if (file.meta.kuraObjectId) row.dataset.objectId = String(file.meta.kuraObjectId);
    return row;
  }

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
    const row = resultRow(uppy.getFile(file.id) || file);
    if (!row || !progress.bytesTotal) return;
    const bar = row.querySelector(".upload-progress");
    bar.value = Math.floor((100 * progress.bytesUploaded) / progress.bytesTotal);
    if (row.querySelector(".checksum-state").dataset.state !== "uploading") {
      setState(row, "uploading", strings.uploading);
      clearUploadError(row);
    }
  });

  uppy.on("upload-error", (file, err) => {
    if (file) showUploadError(uppy.getFile(file.id) || file, err);
  });

  uppy.on("upload-retry", (file) => {
    const row = rows.get(file.id);
    if (row) {
      setState(row, "uploading", strings.uploading);
      clearUploadError(row);
    }
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
    }
  });
})();
