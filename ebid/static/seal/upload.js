// The sealed-bid API from the page (docs/bids-api.md): an envelope that fits one chunk in one request,
// a larger one by resumable upload in chunks and finalize; withdraw. Requests carry the session cookie
// and the page's CSRF token (X-CSRFToken). Only ciphertext is sent.
//
// One request: POST /api/tenders/{t}/lots/{l}/bids?sha256= with the envelope as the body; the answer is
// the receipt bundle. When that request gets no answer (network, server restarting), the page falls back
// to the resumable path for the same envelope (it starts a session and sends the chunks).
//
// Resume: a failed chunk (network down, server restarting) is retried with growing pauses, each time
// from the offset the server says it has received; a sealed envelope waiting for upload is kept in
// IndexedDB, so that after a reload or a crash the page offers to resume it instead of sealing again.

export class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (payload && payload.code) || "http_error";
    this.fields = (payload && payload.fields) || {};
  }
}

export class NetworkError extends Error {
  constructor(detail) {
    super(detail);
    this.code = "network";
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// This browser's random installation id, kept in localStorage and sent as X-Ebid-Client with uploads:
// the supervisors' collusion screens compare it across bidders (条例 §40: bids from the same device).
function browserId() {
  try {
    let id = window.localStorage.getItem("ebid-client-id");
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
      window.localStorage.setItem("ebid-client-id", id);
    }
    return `browser/${id}`;
  } catch (_error) {
    return null;  // storage disabled: the platform still records the address
  }
}

export class Api {
  constructor({ csrfToken = "", organisationId = null, base = "" } = {}) {
    this.csrfToken = csrfToken;
    this.organisationId = organisationId;
    this.base = base;
  }

  url(path, query = {}) {
    const url = new URL(this.base + path, window.location.origin);
    const all = { ...query };
    if (this.organisationId != null && !("organisation_id" in all)) all.organisation_id = this.organisationId;
    for (const [k, v] of Object.entries(all)) if (v != null) url.searchParams.set(k, v);
    return url.toString();
  }

  async call(method, path, { query = {}, json, body, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = this.csrfToken;
    const client = browserId();
    if (client) headers["X-Ebid-Client"] = client;
    let payload = body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/octet-stream";
    }
    let response;
    try {
      response = await fetch(this.url(path, query), { method, headers, body: payload, credentials: "same-origin",
        signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new NetworkError(String(err));
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  get(path, query) { return this.call("GET", path, { query }); }
}

function retryable(err) {
  return err instanceof NetworkError || (err instanceof ApiError
    && (err.status >= 500 || err.status === 429 || err.code === "offset_mismatch"));
}

// Upload a sealed envelope and finalize it; returns the finalize answer (receipt bundle of the API).
// An envelope no larger than `chunkSize` goes in one request; `state.uploadId` resumes an existing
// upload session. Callbacks: onSession(upload) once the session
// exists, onProgress(sentBytes, size), onRetry(attempt, error).
export async function uploadEnvelope(api, { tenderId, lotId, blob, sha256, state = {}, chunkSize = 4 << 20,
  maxAttempts = 8, onSession = null, onProgress = null, onRetry = null, signal = null }) {
  if (!state.uploadId && blob.size <= chunkSize) {
    try {
      const result = await api.call("POST", `/api/tenders/${tenderId}/lots/${lotId}/bids`,
        { query: { sha256 }, body: blob, signal });
      if (onProgress) onProgress(blob.size, blob.size);
      return result;
    } catch (err) {
      if (!retryable(err)) throw err;
      if (onRetry) onRetry(1, err);  // no answer: the resumable path below takes over
    }
  }
  let upload;
  if (state.uploadId) {
    upload = await api.get(`/api/uploads/${state.uploadId}`);
    if (upload.size !== blob.size || upload.sha256 !== sha256) throw new ApiError(409, { code: "other_envelope" });
  } else {
    upload = await api.call("POST", `/api/tenders/${tenderId}/lots/${lotId}/uploads`,
      { json: { size: blob.size, sha256, organisation_id: api.organisationId } });
  }
  if (onSession) onSession(upload);
  const limit = Math.max(1, Math.min(chunkSize, upload.max_chunk || chunkSize));
  let received = upload.received;
  let failures = 0;
  if (onProgress) onProgress(received, blob.size);
  while (upload.status === "open" && received < blob.size) {
    if (signal && signal.aborted) throw new DOMException("stopped", "AbortError");
    try {
      const answer = await api.call("PUT", `/api/uploads/${upload.id}`, { query: { offset: received },
        body: blob.slice(received, received + limit), signal });
      received = answer.received;
      failures = 0;
      if (onProgress) onProgress(received, blob.size);
    } catch (err) {
      if (!retryable(err) || ++failures >= maxAttempts) throw err;
      if (onRetry) onRetry(failures, err);
      await sleep(Math.min(30000, 500 * 2 ** failures));
      try {
        upload = await api.get(`/api/uploads/${upload.id}`);
        received = upload.received;
      } catch (again) {
        if (!retryable(again)) throw again;
      }
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.call("POST", `/api/uploads/${upload.id}/finalize`, { signal });
    } catch (err) {
      // finalize is idempotent: a finalized upload answers with the same receipt
      if (!(err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) || attempt >= maxAttempts) {
        throw err;
      }
      if (onRetry) onRetry(attempt, err);
      await sleep(Math.min(30000, 500 * 2 ** attempt));
    }
  }
}

// --- sealed envelopes waiting for upload, kept in IndexedDB ---------------------------------------------

const DB_NAME = "ebid-sealed-envelopes";
const STORE = "pending";

function database() {
  return new Promise((resolve, reject) => {
    if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "key" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, work) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export const pending = {
  key: (tenderId, lotId, organisationId) => `${tenderId}/${lotId}/${organisationId}`,
  async save(record) {
    try { await run("readwrite", (store) => store.put(record)); } catch (err) { /* private mode: no resume */ }
  },
  async load(key) {
    try { return (await run("readonly", (store) => store.get(key))) || null; } catch (err) { return null; }
  },
  async remove(key) {
    try { await run("readwrite", (store) => store.delete(key)); } catch (err) { /* nothing kept */ }
  },
};
