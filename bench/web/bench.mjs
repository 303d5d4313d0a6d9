// Benchmark page for the peers of our engine: a raw fetch loop and Uppy (two generations), each uploading the picked
// file with the same part size and concurrency. Our engine is measured on the real app page, not here.
//   /static/bench/bench.html?c=raw|raw-sha256|uppy5|uppy6&part=BYTES&conc=N
// window.__bench tells the harness when the page can take a pick, when the upload finished, and any error; timings
// come from Resource Timing, the same instrument as for the engine's worker.
const params = new URLSearchParams(location.search);
const contender = params.get("c");
const partSize = Number(params.get("part"));
const concurrency = Number(params.get("conc"));
const state = (window.__bench = { contender, ready: false, pickAt: null, doneAt: null, error: null, sessions: [] });
const status = (text) => { document.getElementById("status").textContent = text; };
document.getElementById("title").textContent = contender;

async function api(method, path, body) {
  const init = { method, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers = { "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function sha256Base64(blob) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// Part URLs from our presign service, asked for in batches of 16 like the engine does.
class UrlBook {
  constructor(session, checksums) {
    this.id = session.session_id;
    this.count = session.part_count;
    this.urls = new Map(session.urls.map((u) => [u.part_number, u.url]));
    this.pending = new Map();
    this.checksums = checksums;
  }

  async get(number, checksum) {
    if (this.urls.has(number)) return this.urls.get(number);
    if (checksum !== undefined) {
      const body = { parts: [{ part_number: number, checksum_sha256: checksum }] };
      const answer = await api("POST", `/api/uploads/${this.id}/urls`, body);
      return answer.urls[0].url;
    }
    if (!this.pending.has(number)) {
      const numbers = [];
      for (let n = number; n <= this.count && numbers.length < 16; n++) {
        if (!this.urls.has(n) && !this.pending.has(n)) numbers.push(n);
      }
      const request = api("POST", `/api/uploads/${this.id}/urls`, { part_numbers: numbers }).then((answer) => {
        for (const u of answer.urls) this.urls.set(u.part_number, u.url);
      });
      for (const n of numbers) this.pending.set(n, request);
    }
    await this.pending.get(number);
    return this.urls.get(number);
  }
}

async function createSession(file, checksums) {
  const session = await api("POST", "/api/uploads", {
    file_name: file.name, size: file.size, content_type: file.type || "application/octet-stream", part_size: partSize,
    ...(checksums ? { checksum_algorithm: "SHA256" } : {}),
  });
  if (session.part_size !== partSize) throw new Error(`server chose ${session.part_size}-byte parts, not ${partSize}`);
  state.sessions.push(session.session_id);
  return session;
}

// The practical limit of browser + server: N fetch PUTs of Blob slices to presigned URLs, nothing else.
async function raw(file, { checksums = false } = {}) {
  const session = await createSession(file, checksums);
  const book = new UrlBook(session, checksums);
  const parts = [];
  let next = 1;
  async function lane() {
    while (next <= session.part_count) {
      const number = next++;
      const start = (number - 1) * session.part_size;
      const body = file.slice(start, Math.min(file.size, start + session.part_size));
      const checksum = checksums ? await sha256Base64(body) : undefined;
      const url = await book.get(number, checksum);
      const init = { method: "PUT", body };
      if (checksum) init.headers = { "x-amz-checksum-sha256": checksum };
      const response = await fetch(url, init);
      if (!response.ok) throw new Error(`part ${number}: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
      parts.push({ part_number: number, etag: response.headers.get("ETag") });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  parts.sort((a, b) => a.part_number - b.part_number);
  await api("POST", `/api/uploads/${session.session_id}/complete`, { parts });
}

// Uppy 5 (classic multipart hooks) is pointed at our presign service; Uppy 6 signs with credentials for the bucket.
const runners = {
  raw: (file) => raw(file),
  "raw-sha256": (file) => raw(file, { checksums: true }),
  uppy5: async (file) => {
    const { upload } = await import("/static/bench/uppy5.js");
    const books = new Map();
    return upload(file, {
      partSize, concurrency,
      async create(f) {
        const session = await createSession(f, false);
        books.set(session.session_id, new UrlBook(session, false));
        return { uploadId: session.session_id, key: session.object_key };
      },
      sign: (uploadId, partNumber) => books.get(uploadId).get(partNumber),
      async list(uploadId) {
        const answer = await api("GET", `/api/uploads/${uploadId}`);
        return answer.parts.map((p) => ({ PartNumber: p.part_number, ETag: p.etag, Size: p.size }));
      },
      complete: (uploadId, parts) => api("POST", `/api/uploads/${uploadId}/complete`, {
        parts: parts.map((p) => ({ part_number: p.PartNumber, etag: p.ETag })).sort((a, b) => a.part_number - b.part_number),
      }),
      abort: (uploadId) => api("DELETE", `/api/uploads/${uploadId}`),
    });
  },
  uppy6: async (file) => {
    const { upload } = await import("/static/bench/uppy6.js");
    const s3 = JSON.parse(params.get("s3"));
    return upload(file, { partSize, concurrency, ...s3 });
  },
};

async function main() {
  if (!runners[contender]) throw new Error(`unknown contender ${contender}`);
  await fetch("/", { credentials: "same-origin" }); // the identity cookie our service keys sessions on
  if (contender.startsWith("uppy")) await import(`/static/bench/${contender}.js`); // loaded before the pick
  const input = document.getElementById("file");
  input.addEventListener("change", async () => {
    state.pickAt = performance.now();
    status("uploading");
    try {
      await runners[contender](input.files[0]);
      state.doneAt = performance.now();
      status("done");
    } catch (error) {
      state.error = String((error && error.stack) || error);
      status(state.error);
    }
  });
  state.ready = true;
  status("ready");
}

main().catch((error) => { state.error = String((error && error.stack) || error); status(state.error); });
