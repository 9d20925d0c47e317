// Browser mode: the demo's networks run in the visitor's browser with onnxruntime-web.
//
// The server sends a plan (upscaler/browser.py): per stage, the ONNX file's URL and the
// facts needed to tile exactly as the Python Upscaler does (upscaler/inference.py):
//   decode with the file's EXIF orientation (the browser's decoder) -> RGB in [0, 1],
//   padded at the bottom/right to the size multiple (mirrored, or repeated edges when the
//   image is smaller than the padding) -> tiles of `tile` input pixels that overlap by
//   `tile_pad` (the receptive field, so tiled == untiled) -> the network -> each tile's
//   centre kept -> clamped, rounded to 8 bits. 4x chains two 2x stages through 8-bit
//   images, as the server does.
// Differences from the server, by design: the alpha channel is resized once with the
// browser's high-quality smoothing (the server: bicubic per stage), gray images come out
// as RGB, and the bilinear view is the browser's own bilinear drawImage.
//
// window.catUpscaler.run(image, plan) is started by the page's "Upscale in my browser"
// button; window.catUpscaler.last holds the last run's facts (for tests and benchmarks).
(() => {
  const state = { run: 0, cancelled: false, ort: null, runtimeSource: null };
  const $ = (id) => document.getElementById(id);
  const absolute = (url) => new URL(url, window.location.href).href;
  const CROP = 256;

  class Stop extends Error {}  // a run that ends with a message, not a bug

  function status(text, kind = "") {
    const el = $("bm-status");
    if (el) { el.textContent = text; el.dataset.kind = kind; }
  }

  function show(id, on) { const el = $(id); if (el) el.hidden = !on; }

  async function loadRuntime(rt) {
    if (state.ort) return state.ort;
    if (typeof WebAssembly !== "object") {
      throw new Stop("This browser cannot run the network here: it has no WebAssembly.");
    }
    if (!window.ort) {
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = absolute(rt.script);
        if (rt.integrity) { s.integrity = rt.integrity; s.crossOrigin = "anonymous"; }
        s.onload = resolve;
        s.onerror = () => reject(new Stop(`Could not load onnxruntime-web ${rt.version} from ` +
          ({ cdn: "its CDN (offline, or blocked?)", mirror: "its mirror" }[rt.source] || "this server") +
          "; use the server instead (untick \"run in my browser\")."));
        document.head.appendChild(s);
      });
    }
    const ort = window.ort;
    ort.env.wasm.wasmPaths = absolute(rt.wasm_paths);
    // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    state.ort = ort;
    state.runtimeSource = rt.source;
    return ort;
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

  function paddedPlanes(img, H, W) {
    // 3 x H x W float32 in [0, 1]; rows/columns past the image mirrored (reflect, without
    // repeating the edge) when the padding is smaller than the image, else edge repeated.
    const { width: w, height: h, data } = img;
    const reflect = H - h < h && W - w < w;
    const at = (v, n) => (v < n ? v : reflect ? 2 * (n - 1) - v : n - 1);
    const planes = new Float32Array(3 * H * W);
    for (let y = 0; y < H; y++) {
      const sy = at(y, h);
      for (let x = 0; x < W; x++) {
        const s = (sy * w + at(x, w)) * 4, d = y * W + x;
        planes[d] = data[s] / 255;
        planes[H * W + d] = data[s + 1] / 255;
        planes[2 * H * W + d] = data[s + 2] / 255;
      }
    }
    return planes;
  }

  function tileGrid(spec, w, h) {
    // The padded size and the tiles of a w x h input, as Upscaler._upscale_tiles makes them
    // (one tile when the padded image fits in one, or when `tile` is 0).
    const m = spec.size_multiple, H = Math.ceil(h / m) * m, W = Math.ceil(w / m) * m;
    const t = spec.tile && !(H <= spec.tile && W <= spec.tile) ? spec.tile : Math.max(H, W);
    return { H, W, t, rows: Math.ceil(H / t), cols: Math.ceil(W / t) };
  }

  async function runStage(session, spec, img, onTile, runId) {
    const ort = state.ort;
    const f = spec.factor, [lo, hi] = spec.value_range;
    const w = img.width, h = img.height;
    const { H, W, t, rows, cols } = tileGrid(spec, w, h);
    const planes = paddedPlanes(img, H, W);
    const OW = w * f, OH = h * f;
    const out = new ImageData(OW, OH);
    const p = spec.tile_pad;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        if (state.cancelled || runId !== state.run) throw new Stop("Cancelled.");
        const y0 = i * t, x0 = j * t, y1 = Math.min(y0 + t, H), x1 = Math.min(x0 + t, W);
        const py0 = Math.max(y0 - p, 0), px0 = Math.max(x0 - p, 0);
        const py1 = Math.min(y1 + p, H), px1 = Math.min(x1 + p, W);
        const th = py1 - py0, tw = px1 - px0;
        const input = new Float32Array(3 * th * tw);
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < th; y++) {
            const src = c * H * W + (py0 + y) * W + px0, dst = (c * th + y) * tw;
            for (let x = 0; x < tw; x++) input[dst + x] = planes[src + x] * (hi - lo) + lo;
          }
        }
        const feeds = { image: new ort.Tensor("float32", input, [1, 3, th, tw]) };
        const result = await session.run(feeds);
        const y = result.upscaled.data, TH = th * f, TW = tw * f;
        const oy1 = Math.min(y1, h), ox1 = Math.min(x1, w);
        for (let yy = y0 * f; yy < oy1 * f; yy++) {
          const ty = yy - py0 * f;
          for (let xx = x0 * f; xx < ox1 * f; xx++) {
            const tx = xx - px0 * f, o = (yy * OW + xx) * 4;
            for (let c = 0; c < 3; c++) {
              const v = (y[(c * TH + ty) * TW + tx] - lo) / (hi - lo);
              out.data[o + c] = Math.round(Math.min(Math.max(v, 0), 1) * 255);
            }
            out.data[o + 3] = 255;
          }
        }
        if (result.upscaled.dispose) result.upscaled.dispose();
        onTile();
        await new Promise((r) => setTimeout(r, 0));  // let the page paint the progress
      }
    }
    return out;
  }


  function withAlpha(learned, input) {
    // The input's alpha, resized once to the output size; opaque inputs stay opaque.
    let opaque = true;
    for (let k = 3; k < input.data.length; k += 4) if (input.data[k] !== 255) { opaque = false; break; }
    if (opaque) return learned;
    const a = new ImageData(input.width, input.height);
    for (let k = 0; k < input.data.length; k += 4) {
      a.data[k] = a.data[k + 1] = a.data[k + 2] = input.data[k + 3];
      a.data[k + 3] = 255;
    }
    const small = canvas(input.width, input.height);
    small.getContext("2d").putImageData(a, 0, 0);
    const big = canvas(learned.width, learned.height);
    const ctx = big.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(small, 0, 0, big.width, big.height);
    const alpha = ctx.getImageData(0, 0, big.width, big.height).data;
    for (let k = 3; k < learned.data.length; k += 4) learned.data[k] = alpha[k - 3];
    return learned;
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

  function showResult(learnedData, input, plan) {
    const learned = $("bm-learned"), bilinear = $("bm-bilinear");
    learned.width = bilinear.width = learnedData.width;
    learned.height = bilinear.height = learnedData.height;
    learned.getContext("2d").putImageData(learnedData, 0, 0);
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
    const [cx, cy] = detailCentre(input);
    drawCrops(cx * state.factor, cy * state.factor);
  }

  function pngBlob(canvasEl) {
    return new Promise((resolve, reject) =>
      canvasEl.toBlob((b) => (b ? resolve(b) : reject(new Stop("Could not encode the PNG."))), "image/png"));
  }

  function explain(e) {
    if (e instanceof Stop) return e.message;
    const text = String((e && e.message) || e);
    if (e instanceof RangeError || /memory|alloc/i.test(text)) {
      return "Out of memory in this browser for this image: use a smaller scale, or the server " +
             "(untick \"run in my browser\").";
    }
    return `The network could not run in this browser (${text.slice(0, 160)}); ` +
           "use the server (untick \"run in my browser\").";
  }

  async function run(image, plan) {
    if (!plan || !image) return;
    const runId = ++state.run;
    state.cancelled = false;
    const started = performance.now();
    const last = { ok: false, download_name: plan.download_name, model_bytes: 0 };
    window.catUpscaler.last = last;
    show("bm-compare", false); show("bm-crops", false); show("bm-download", false); show("bm-use-server", false);
    show("bm-progress", true); show("bm-cancel", true);
    const progress = $("bm-progress");
    try {
      status("Loading onnxruntime-web...");
      const ort = await loadRuntime(plan.runtime);
      const backend = await pickBackend();
      let img = await decode(image.url || image.path);
      const input = img;
      const total = plan.stages.reduce((n, s, k) => {
        const f = plan.stages.slice(0, k).reduce((a, t) => a * t.factor, 1);
        const grid = tileGrid(s, input.width * f, input.height * f);
        return n + grid.rows * grid.cols;
      }, 0);
      let done = 0;
      progress.max = total; progress.value = 0;
      state.factor = plan.stages.reduce((a, s) => a * s.factor, 1);
      let networkMs = 0;
      for (const spec of plan.stages) {
        status(`Downloading the ${spec.stage} network (${(spec.bytes / 1e6).toFixed(2)} MB)...`);
        let session;
        try {
          const bytes = new Uint8Array(await (await fetch(absolute(spec.url))).arrayBuffer());
          last.model_bytes += bytes.length;
          session = await ort.InferenceSession.create(bytes, {
            executionProviders: backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
            graphOptimizationLevel: "all",
          });
        } catch (e) {
          throw new Stop(`The ${spec.stage} network failed to load in this browser (${String(e.message || e).slice(0, 120)}); ` +
                         "use the server (untick \"run in my browser\").");
        }
        const where = backend === "webgpu" ? "WebGPU" : `WebAssembly, ${ort.env.wasm.numThreads} thread(s)`;
        const t0 = performance.now();
        try {
          img = await runStage(session, spec, img, () => {
            done += 1;
            progress.value = done;
            status(`Upscaling in your browser (${where}): tile ${done} of ${total}...`);
          }, runId);
        } finally {
          networkMs += performance.now() - t0;
          session.release();
        }
        last.backend = where;
      }
      const learnedData = withAlpha(img, input);
      showResult(learnedData, input, plan);
      const shownSeconds = (performance.now() - started) / 1000;  // the result is on screen
      status("Done; making the PNG for the download...");
      const blob = await pngBlob($("bm-learned"));
      const link = $("bm-download");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(blob);
      link.download = plan.download_name;
      link.textContent = `Download ${plan.download_name} (${(blob.size / 1e6).toFixed(1)} MB)`;
      show("bm-download", true);
      const seconds = (performance.now() - started) / 1000;
      Object.assign(last, { ok: true, seconds, shown_seconds: shownSeconds, network_seconds: networkMs / 1000, width: learnedData.width,
                            height: learnedData.height, png_bytes: blob.size, runtime: state.runtimeSource });
      status(`Done in your browser: ${input.width}x${input.height} -> ${learnedData.width}x${learnedData.height} ` +
             `in ${shownSeconds.toFixed(2)} s, download ready at ${seconds.toFixed(2)} s (${last.backend}); ${(last.model_bytes / 1e6).toFixed(2)} MB of network ` +
             "downloaded, no image sent back.", "ok");
    } catch (e) {
      last.error = explain(e);
      status(last.error, "error");
      show("bm-use-server", last.error !== "Cancelled.");  // the fallback, one click away
      if (!(e instanceof Stop)) console.error(e);
    } finally {
      last.finished = true;
      show("bm-progress", false); show("bm-cancel", false);
    }
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
      if (t && t.id === "bm-cancel") { state.cancelled = true; status("Cancelling..."); }
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
    state.run += 1;  // a run in progress stops at its next tile
    show("bm-compare", false); show("bm-crops", false); show("bm-download", false);
    show("bm-progress", false); show("bm-cancel", false); show("bm-use-server", false);
    status("Press \"Upscale in my browser\".");
  }

  window.catUpscaler = { run, clear, last: null, cancel: () => { state.cancelled = true; } };
  wire();
})();
