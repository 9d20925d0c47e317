// Browser mode's worker: everything heavy of a browser-mode run, off the page's main
// thread, so the page stays responsive and Cancel can stop a run at once (the page
// terminates this worker; the next run starts a fresh one). Between runs it stays, with
// the runtime loaded: a fresh worker per run left Chromium slower run after run (8x of the
// example: 5.8 s of network, then 12.5 s), one kept worker did not.
//
// web/browser_mode.js sends it a message per run:
//   {runtime: {script: blob URL of the checked onnxruntime-web script, version, wasm_paths,
//    threads}, png_writer: URL of web/png_writer.js, backend: "webgpu" | "wasm",
//    stages: [stage specs with absolute URLs], width, height, pixels: the input's RGBA
//    bytes (transferred)}
// and it answers with messages {type: ...}:
//   "phase" {text}: loading the runtime, a network, compiling it, making the PNG;
//   "tile" {done, total, seconds_left, where}: after each tile;
//   "shown" {bitmap: ImageBitmap of the result, width, height, network_ms, model_bytes, where};
//   "png" {png: Blob, has_alpha}: the download, last;
//   "error" {message, expected}: expected = a message for the visitor, not a bug.
//
// The arithmetic is Upscaler's (upscaler/inference.py): RGB in [0, 1], padded at the
// bottom/right to the size multiple (mirrored, or repeated edges when the image is smaller
// than the padding) -> tiles of `tile` input pixels that overlap by `tile_pad` (the
// receptive field, so tiled == untiled) -> the network -> each tile's centre kept ->
// clamped, rounded to 8 bits. 4x chains two 2x stages through 8-bit images, as the server
// does. The alpha channel is resized once with the browser's high-quality smoothing.
/* global ort, encodePng */
class Stop extends Error {}  // a run that ends with a message, not a bug

function phase(text) { self.postMessage({ type: "phase", text }); }

function tileGrid(spec, w, h) {
  // The padded size and the tiles of a w x h input, as Upscaler._upscale_tiles makes them
  // (one tile when the padded image fits in one, or when `tile` is 0).
  const m = spec.size_multiple, H = Math.ceil(h / m) * m, W = Math.ceil(w / m) * m;
  const t = spec.tile && !(H <= spec.tile && W <= spec.tile) ? spec.tile : Math.max(H, W);
  return { H, W, t, rows: Math.ceil(H / t), cols: Math.ceil(W / t) };
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

async function runStage(session, spec, img, onTile) {
  const f = spec.factor, [lo, hi] = spec.value_range;
  const w = img.width, h = img.height;
  const { H, W, t, rows, cols } = tileGrid(spec, w, h);
  const planes = paddedPlanes(img, H, W);
  const OW = w * f, OH = h * f;
  const out = { width: OW, height: OH, data: new Uint8ClampedArray(OW * OH * 4) };
  const p = spec.tile_pad;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
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
      const result = await session.run({ image: new ort.Tensor("float32", input, [1, 3, th, tw]) });
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
  const small = new OffscreenCanvas(input.width, input.height);
  small.getContext("2d").putImageData(a, 0, 0);
  const big = new OffscreenCanvas(learned.width, learned.height);
  const ctx = big.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, big.width, big.height);
  const alpha = ctx.getImageData(0, 0, big.width, big.height).data;
  for (let k = 3; k < learned.data.length; k += 4) learned.data[k] = alpha[k - 3];
  return learned;
}

async function loadSession(spec, backend) {
  phase(`Loading the ${spec.stage} network (${(spec.bytes / 1e6).toFixed(2)} MB)...`);
  let bytes;
  try {
    const response = await fetch(spec.url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw new Stop(`The ${spec.stage} network could not be downloaded (${String(e.message || e).slice(0, 120)}); ` +
                   "use the server (untick \"run in my browser\").");
  }
  phase(`Compiling the ${spec.stage} network...`);
  try {
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
      graphOptimizationLevel: "all",
    });
    return { session, bytes: bytes.length };
  } catch (e) {
    throw new Stop(`The ${spec.stage} network failed to load in this browser (${String(e.message || e).slice(0, 120)}); ` +
                   "use the server (untick \"run in my browser\").");
  }
}

function loadRuntime(job) {
  if (self.ort) return;  // loaded by an earlier run of this worker
  phase(`Loading the runtime (onnxruntime-web ${job.runtime.version})...`);
  try {
    importScripts(job.png_writer, job.runtime.script);
  } catch (e) {
    throw new Stop(`Could not start onnxruntime-web ${job.runtime.version} in this browser; ` +
                   "use the server instead (untick \"run in my browser\").");
  }
  ort.env.wasm.wasmPaths = job.runtime.wasm_paths;
  ort.env.wasm.numThreads = job.runtime.threads;
}

async function run(job) {
  loadRuntime(job);
  const where = job.backend === "webgpu" ? "WebGPU" : `WebAssembly, ${job.runtime.threads} thread(s)`;
  const input = { width: job.width, height: job.height, data: new Uint8ClampedArray(job.pixels) };
  let img = input, total = 0, done = 0, networkMs = 0, modelBytes = 0, factor = 1;
  for (const spec of job.stages) {
    const grid = tileGrid(spec, input.width * factor, input.height * factor);
    total += grid.rows * grid.cols;
    factor *= spec.factor;
  }
  for (const spec of job.stages) {
    const { session, bytes } = await loadSession(spec, job.backend);
    modelBytes += bytes;
    const t0 = performance.now();
    try {
      img = await runStage(session, spec, img, () => {
        done += 1;
        const elapsed = networkMs + performance.now() - t0;
        self.postMessage({ type: "tile", done, total, where, seconds_left: elapsed / done * (total - done) / 1000 });
      });
    } finally {
      networkMs += performance.now() - t0;
      session.release();
    }
  }
  const learned = withAlpha(new ImageData(img.data, img.width, img.height), input);
  const bitmap = await createImageBitmap(learned);
  self.postMessage({ type: "shown", bitmap, width: learned.width, height: learned.height, network_ms: networkMs,
                     model_bytes: modelBytes, where }, [bitmap]);
  phase("Making the PNG for the download...");
  const { blob, hasAlpha } = await encodePng(learned.data, learned.width, learned.height);
  self.postMessage({ type: "png", png: blob, has_alpha: hasAlpha });
}

self.onmessage = async (event) => {
  try {
    await run(event.data);
  } catch (e) {
    const expected = e instanceof Stop;
    let message = expected ? e.message : String((e && e.message) || e);
    if (!expected && (e instanceof RangeError || /memory|alloc/i.test(message))) {
      message = "Out of memory in this browser for this image: use a smaller scale, or the server " +
                "(untick \"run in my browser\").";
    } else if (!expected) {
      message = `The network could not run in this browser (${message.slice(0, 160)}); ` +
                "use the server (untick \"run in my browser\").";
    }
    self.postMessage({ type: "error", message, expected });
  }
};
