// Browser mode: the demo's networks run in the visitor's browser with onnxruntime-web.
//
// This script is the page's side: it fetches the runtime (checked by its hash), decodes the
// image with the file's EXIF orientation (the browser's decoder), starts a worker
// (web/browser_worker.js) that does all the heavy work (tiles, the network, the PNG), and
// shows what the worker reports: phases, tile N of M with the time left, the result, the
// download. Cancel terminates the worker at once; the next run starts a fresh one. The
// page's main thread never runs a network, so the page never freezes.
//
// The server sends a plan (upscaler/browser.py): per stage, the ONNX file's URL and the
// facts needed to tile exactly as the Python Upscaler does; the worker's header says how.
// Differences from the server, by design: the alpha channel is resized once with the
// browser's high-quality smoothing (the server: bicubic per stage), gray images come out
// as RGB, and the bilinear view is the browser's own bilinear drawImage.
//
// window.catUpscaler.run(image, plan) is started by the page's "Upscale in my browser"
// button (or by "Shrink and upscale", whose plan carries the shrunk image); .last holds
// the last run's facts (for tests and benchmarks).
(() => {
  const state = { run: 0, worker: null, scriptUrl: null, runtimeSource: null, finish: null, focus: null };
  const $ = (id) => document.getElementById(id);
  const absolute = (url) => new URL(url, window.location.href).href;
  const CROP = 256;

  class Stop extends Error {}  // a run that ends with a message, not a bug

  function status(text, kind = "") {
    const el = $("bm-status");
    if (el) { el.textContent = text; el.dataset.kind = kind; }
    const last = window.catUpscaler && window.catUpscaler.last;
    if (last && !last.finished) (last.statuses = last.statuses || []).push(text);  // what the visitor saw, in order
  }

  function show(id, on) { const el = $(id); if (el) el.hidden = !on; }

  async function runtimeScript(rt) {
    // onnxruntime-web's script, fetched here (checked by its integrity hash when it comes
    // from another origin) and handed to the worker as a blob URL, once per page.
    if (state.scriptUrl) return state.scriptUrl;
    if (typeof WebAssembly !== "object" || typeof Worker !== "function") {
      throw new Stop("This browser cannot run the network here: it has no WebAssembly or no workers.");
    }
    const failed = new Stop(`Could not load onnxruntime-web ${rt.version} from ` +
      ({ cdn: "its CDN (offline, or blocked?)", mirror: "its mirror" }[rt.source] || "this server") +
      "; use the server instead (untick \"run in my browser\").");
    let text;
    try {
      const response = await fetch(absolute(rt.script), rt.integrity ? { integrity: rt.integrity, mode: "cors" } : {});
      if (!response.ok) throw failed;
      text = await response.text();
    } catch (e) {
      throw failed;  // unreachable, blocked, or not the bytes the hash names
    }
    state.scriptUrl = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
    state.runtimeSource = rt.source;
    return state.scriptUrl;
  }

  async function pickBackend() {
    const forced = new URLSearchParams(window.location.search).get("backend");
    if (forced !== "wasm" && navigator.gpu) {
      try {
        if (await navigator.gpu.requestAdapter()) return "webgpu";
      } catch (e) { /* no usable GPU: WebAssembly below */ }
    }
    return "wasm";
  }

  function canvas(w, h) {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    return c;
  }

  async function decode(url) {
    const response = await fetch(absolute(url));
    if (!response.ok) throw new Stop(`Could not read your image back from the page (HTTP ${response.status}).`);
    let bitmap;
    try {
      bitmap = await createImageBitmap(await response.blob(),
        { imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none" });
    } catch (e) {
      throw new Stop("This browser cannot decode the image; use the server (untick \"run in my browser\").");
    }
    const c = canvas(bitmap.width, bitmap.height);
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height);
  }

  function detailCentre(img) {
    // The 256-px output window with the most local detail, on a coarse grid of the input.
    const { width: w, height: h, data } = img;
    const k = Math.max(4, Math.round(CROP / (state.factor || 1)));
    let best = -1, centre = [w / 2, h / 2];
    for (let y = 0; y + k <= h; y += Math.max(1, k >> 1)) {
      for (let x = 0; x + k <= w; x += Math.max(1, k >> 1)) {
        let s = 0, s2 = 0, n = 0;
        for (let yy = y; yy < y + k; yy += 2) for (let xx = x; xx < x + k; xx += 2) {
          const o = (yy * w + xx) * 4, v = 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2];
          s += v; s2 += v * v; n++;
        }
        const variance = s2 / n - (s / n) ** 2;
        if (variance > best) { best = variance; centre = [x + k / 2, y + k / 2]; }
      }
    }
    return centre;
  }

  function drawCrops(cx, cy) {
    // cx, cy in output pixels: the same 1:1 window of both results.
    const { bilinear, learned } = state.views;
    const x = Math.min(Math.max(Math.round(cx - CROP / 2), 0), Math.max(learned.width - CROP, 0));
    const y = Math.min(Math.max(Math.round(cy - CROP / 2), 0), Math.max(learned.height - CROP, 0));
    for (const [id, src] of [["bm-crop-bilinear", bilinear], ["bm-crop-learned", learned]]) {
      const c = $(id);
      c.width = Math.min(CROP, src.width); c.height = Math.min(CROP, src.height);
      const ctx = c.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.clearRect(0, 0, c.width, c.height);
      ctx.drawImage(src, x, y, c.width, c.height, 0, 0, c.width, c.height);
    }
  }

  function showResult(bitmap, input) {
    // The worker's ImageBitmap on the learned canvas; the bilinear view is the browser's own
    // bilinear drawImage of the input. Both are GPU or memcpy work: no long task here.
    const learned = $("bm-learned"), bilinear = $("bm-bilinear");
    learned.width = bilinear.width = bitmap.width;
    learned.height = bilinear.height = bitmap.height;
    learned.getContext("2d").drawImage(bitmap, 0, 0);
    const small = canvas(input.width, input.height);
    small.getContext("2d").putImageData(input, 0, 0);
    const ctx = bilinear.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "low";  // bilinear
    ctx.drawImage(small, 0, 0, bilinear.width, bilinear.height);
    state.views = { learned, bilinear };
    $("bm-split").value = 50;
    bilinear.style.clipPath = "inset(0 50% 0 0)";
    show("bm-compare", true);
    show("bm-crops", true);
    const [cx, cy] = state.focus || detailCentre(input);
    drawCrops(cx * state.factor, cy * state.factor);
    window.catUpscaler.last.crop_centre = [cx, cy];  // input pixels: where the 1:1 crops look (for tests)
    inView(document.querySelector(".bm-bar"));  // "Done", the download and the top of the result
  }

  function inView(el) {
    // On a phone the result sits far below the button: bring the bar with the status up
    // (nothing moves when it is already on screen).
    if (!el) return;
    const r = el.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight * 0.6) el.scrollIntoView({ block: "start", behavior: "instant" });
  }

  function couldNotRun(e) {
    // An unexpected failure, said once for the visitor (the worker words its own the same way).
    return `The network could not run in this browser (${String((e && e.message) || e).slice(0, 160)}); ` +
           "use the server (untick \"run in my browser\").";
  }

  function stopWorker() {
    if (state.worker) { state.worker.terminate(); state.worker = null; }
  }

  function seconds(s) {
    return s < 1 ? "under a second" : s < 90 ? `about ${Math.round(s)} s` : `about ${Math.round(s / 60)} min`;
  }

  async function run(image, plan) {
    if (!plan || !(image || plan.image)) return;
    plan = JSON.parse(JSON.stringify(plan));  // plain data: the page's copy is a proxy, which a worker cannot receive
    const previous = window.catUpscaler.last;
    if (previous && !previous.finished) stopWorker();  // a run still going belongs to other inputs
    const runId = ++state.run;
    const started = performance.now();
    const last = { ok: false, download_name: plan.download_name, model_bytes: 0 };
    window.catUpscaler.last = last;
    show("bm-compare", false); show("bm-crops", false); show("bm-download", false); show("bm-use-server", false);
    show("bm-progress", true); show("bm-cancel", true);
    inView(document.querySelector(".bm-bar"));
    const progress = $("bm-progress");
    progress.removeAttribute("value");  // indeterminate until the first tile
    const finish = (error) => {
      if (runId !== state.run) return;
      if (error) {
        last.error = error;
        status(error, "error");
        show("bm-use-server", error !== "Cancelled.");  // the fallback, one click away
      }
      last.finished = true;
      last.finished_at = performance.now();
      show("bm-progress", false); show("bm-cancel", false);
      if (error) stopWorker();  // a failed worker is not reused; a good one keeps its runtime for the next run
    };
    state.finish = finish;
    try {
      status(`Loading the runtime (onnxruntime-web ${plan.runtime.version})...`);
      const script = await runtimeScript(plan.runtime);
      const backend = await pickBackend();
      const input = await decode(plan.image || image.url || image.path);
      if (runId !== state.run) return;
      state.factor = plan.stages.reduce((a, s) => a * s.factor, 1);
      state.focus = plan.focus || null;
      const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
      const worker = state.worker = state.worker || new Worker(absolute(plan.runtime.worker));
      worker.onmessage = ({ data: m }) => {
        if (runId !== state.run) return;
        if (m.type === "phase") status(m.text);
        else if (m.type === "tile") {
          progress.max = m.total; progress.value = m.done;
          last.backend = m.where;
          status(`Upscaling in your browser (${m.where}): tile ${m.done} of ${m.total}` +
                 (m.done < m.total ? `, ${seconds(m.seconds_left)} left...` : "..."));
        } else if (m.type === "shown") {
          showResult(m.bitmap, input);
          Object.assign(last, { shown_seconds: (performance.now() - started) / 1000, network_seconds: m.network_ms / 1000,
                                width: m.width, height: m.height, model_bytes: m.model_bytes, backend: m.where });
        } else if (m.type === "png") {
          const link = $("bm-download");
          if (link.href) URL.revokeObjectURL(link.href);
          link.href = URL.createObjectURL(m.png);
          link.download = plan.download_name;
          link.textContent = `Download ${plan.download_name} (${(m.png.size / 1e6).toFixed(1)} MB)`;
          show("bm-download", true);
          const total = (performance.now() - started) / 1000;
          Object.assign(last, { ok: true, seconds: total, png_bytes: m.png.size, png_alpha: m.has_alpha,
                                runtime: state.runtimeSource });
          status(`Done in your browser: ${input.width}x${input.height} -> ${last.width}x${last.height} ` +
                 `in ${last.shown_seconds.toFixed(2)} s, download ready at ${total.toFixed(2)} s (${last.backend}); ` +
                 `${(last.model_bytes / 1e6).toFixed(2)} MB of network downloaded, no image sent back.`, "ok");
          finish(null);
        } else if (m.type === "error") {
          if (!m.expected) console.error(m.message);
          finish(m.message);
        }
      };
      worker.onerror = (e) => finish(couldNotRun(e));
      const pixels = input.data.slice().buffer;  // a copy to transfer: the page keeps `input` for the views
      worker.postMessage({ runtime: { script, version: plan.runtime.version, wasm_paths: absolute(plan.runtime.wasm_paths),
                                      threads },
                           png_writer: absolute(plan.runtime.png_writer), backend, stages: plan.stages.map(
                             (spec) => ({ ...spec, url: absolute(spec.url) })),
                           width: input.width, height: input.height, pixels }, [pixels]);
    } catch (e) {
      if (!(e instanceof Stop)) console.error(e);
      finish(e instanceof Stop ? e.message : couldNotRun(e));
    }
  }

  function cancel() {
    // The worker is stopped where it is (mid-tile included): nothing of the run comes back.
    const last = window.catUpscaler.last;
    if (!last || last.finished || !state.finish) return;
    last.cancelled_at = performance.now();
    stopWorker();
    state.finish("Cancelled.");
    state.run += 1;
  }

  function wire() {
    // The view's controls: the split handle, a click to move the crops, Cancel.
    document.addEventListener("input", (e) => {
      if (e.target && e.target.id === "bm-split") {
        $("bm-bilinear").style.clipPath = `inset(0 ${100 - e.target.value}% 0 0)`;
      }
    });
    document.addEventListener("click", (e) => {
      const t = e.target;
      if (t && t.id === "bm-cancel") cancel();
      if (t && t.id === "bm-use-server") {  // untick "run in my browser": the page swaps to the server's button
        const box = document.querySelector("#in-browser input");
        if (box && box.checked) box.click();
      }
      if (t && (t.id === "bm-learned" || t.id === "bm-bilinear") && state.views) {
        const r = t.getBoundingClientRect();
        drawCrops((e.clientX - r.left) * t.width / r.width, (e.clientY - r.top) * t.height / r.height);
      }
    });
  }

  function clear() {
    // New inputs: a result on screen always belongs to the inputs beside it.
    const last = window.catUpscaler.last;
    if (last && !last.finished) stopWorker();  // a run still going: stopped
    state.run += 1;  // a run in progress is dropped
    show("bm-compare", false); show("bm-crops", false); show("bm-download", false);
    show("bm-progress", false); show("bm-cancel", false); show("bm-use-server", false);
    status("Press \"Upscale in my browser\".");
  }

  window.catUpscaler = { run, clear, cancel, last: null };
  wire();
})();
