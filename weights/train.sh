#!/usr/bin/env bash
# The recipe that made the shipped weights (run from the repository root). Each network's
# config.json records its exact command, device, wall time and learning curve.
#
#   bash weights/train.sh                       # every model, all stages, into weights/
#   DATA=/path/to/photos bash weights/train.sh  # your own photos
#
# On the 2-core CPU each run used one thread (THREADS=1) beside others; the 8x fine-tunes
# ran with THREADS=2 (see each model's notes below). On a GPU leave THREADS alone.
set -euo pipefail
DATA=${DATA:-../shared/data/cats/train}
OUT=${OUT:-weights}
THREADS=${THREADS:-$(nproc)}
MODELS=${MODELS:-"seed default photo sharp"}
# accelerate launch gives a CPU process 1 thread unless told otherwise.
LAUNCH="accelerate launch --num_processes 1 --num_machines 1 --dynamo_backend no --num_cpu_threads_per_process $THREADS"
COMMON="--train-data-dir $DATA --output-dir $OUT --validation-steps 500 --checkpointing-steps 500 --resume-from-checkpoint latest"

for model in $MODELS; do
  case $model in
  seed)
    # the reference layout with the reference recipe (MSE, AdamW), bf16 autocast, EMA of the weights
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model seed --stage 64to128  --max-steps 10000
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model seed --stage 128to256 --max-steps 8000
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model seed --stage 256to512 --max-steps 8000
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model seed --stage 64to512  --max-steps 2000
    ;;
  default)
    # ResidualUpsampler8x's layout: a big first stage (48 features, 8 hidden convs), then
    # 32 x 6 and 32 x 2 (see upscaler/models.py). L1, AdamW 1e-3 (2e-4 for the fine-tune),
    # bf16 autocast (AMX), EMA. The --arch-args equal each stage's default layout; they are
    # written out because the runs started before it was the default, and config.json
    # records the command as run.
    # 64to128 then runs a second cosine cycle from its own weights (--init-weights), peak
    # lr 5e-4 (5e-4 and 2e-4 ran side by side to step 1500; 5e-4 led on the held-out
    # photos). The first cycle writes into a folder of its own, so that the second's
    # --resume-from-checkpoint does not find its checkpoints. That cycle ran in fp32
    # (accelerate's default: the flag was left out; config.json records it).
    # These runs used scratch folders beside the repository (../runs13, ../runs14,
    # ../runs15, as their config.json records) and were copied here; some ran at one
    # thread beside another run, or were resumed with two (resume is exact).
    FIRST=${OUT%/}-64to128-first-cycle
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 64to128  --max-steps 10000 \
        --arch-args '{"num_features": 48, "num_convs": 8}' --output-dir "$FIRST"
    $LAUNCH --mixed_precision no   train_accelerate.py $COMMON --model default --stage 64to128  --max-steps 3000 \
        --init-weights "$FIRST" --learning-rate 5e-4
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 128to256 --max-steps 6000
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 256to512 --max-steps 5000 \
        --arch-args '{"num_convs": 2}'
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 64to512  --max-steps 3000
    ;;
  photo)
    # The default's layout, each stage continued from the default's weights (run it after
    # the default), trained on degraded inputs (upscaler/degradations.py: blur, resize
    # method, noise, JPEG; 30% clean), L1, peak lr 5e-4; then the 8x stack built from the
    # three photo stages, fine-tuned with the same degradations. Ran one after another
    # with THREADS=2 into a scratch folder (runs-out, in a git worktree of this repo) and
    # copied here; INIT is the folder holding the default weights.
    INIT=${INIT:-$OUT}
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model photo --stage 64to128  --max-steps 5000 \
        --init-model default --init-weights "$INIT" --learning-rate 5e-4
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model photo --stage 128to256 --max-steps 1500 \
        --init-model default --init-weights "$INIT" --learning-rate 5e-4
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model photo --stage 256to512 --max-steps 1000 \
        --init-model default --init-weights "$INIT" --learning-rate 5e-4
    $LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model photo --stage 64to512  --max-steps 2000 \
        --init-weights "$OUT"
    ;;
  sharp)
    # photo's layout fine-tuned for how people judge it, in phases, on degraded inputs with
    # patches at every content scale, batch 8, lr 1e-4 (warmup, cosine), fp32.
    # Phase 1, Real-ESRGAN's recipe in small (the family's default in train_accelerate.py):
    # L1 + VGG16 feature L1 + 0.1 x relativistic GAN of a 32-feature U-Net SN discriminator
    # (lr 4e-4) + LDL, EMA shipped by validation LPIPS. 64to128 starts from photo's 64to128
    # retrained with --content-scale all (experiments/content-scale-all), the others from
    # photo's (run after photo). Each phase of 64to128 and 128to256 but the last writes into
    # a folder of its own, so that the next one's --resume-from-checkpoint does not find
    # its checkpoints.
    # Phase 2: the two first 2x stages continue from phase 1 with EnhanceNet's texture term at
    # full resolution (--texture-pool 1), a grid penalty and no adversarial term
    # (--gan-weight 0): on 2 cores the discriminator stayed near chance for hundreds of steps,
    # while the texture term pulls from the first (docs/training.md, "Perceptual training").
    # 128to256 takes the heavier texture weight (10) and the tile-wise penalty on period-2
    # energy beyond the truth's, and a third phase in the 4x chain (below); 64to128 a weight
    # of 3 and the stricter --grid-loss error,
    # weighted 1500: a faint grid in its result passes the tile-wise penalty, and 128to256
    # amplifies it into a visible one of period 4 (experiments/sharp-phase3). Then the 8x
    # stack from the three, on 192 px patches (24 px in: VGG16 at 256 px costs 4x more), as
    # 64to128. 256to512 stays from phase 1. Phase 3's and 4's choices: experiments/sharp-chain,
    # experiments/sharp-vgg-gan and experiments/sharp-full-res-disc.
    # On the 2-core CPU phase 1's first two ran side by side at THREADS=1; of phase 2, 128to256
    # ran at THREADS=1 beside other runs, 64to128 at THREADS=2; phase 3 at THREADS=1 beside
    # another run; phase 4's first two side by side at THREADS=1, its last at THREADS=2;
    # phase 5's runs two at a time at THREADS=1 (the first alone at 2); phase 6's 128to256
    # beside another run at THREADS=1, its stack alone at 2; in scratch folders
    # (git worktrees of this repo) from copies of the weights they name, and copied here.
    INIT=${INIT:-$OUT}
    PHASE1=${PHASE1:-$OUT-sharp-phase1}
    SHARP="--model sharp --train-batch-size 8 --learning-rate 1e-4 --checkpointing-steps 100"
    for stage in 64to128 128to256; do
      steps=$([ $stage = 64to128 ] && echo 1000 || echo 900)
      init=$([ $stage = 64to128 ] && echo experiments/content-scale-all || echo "$INIT")
      $LAUNCH train_accelerate.py $SHARP --train-data-dir "$DATA" --output-dir "$PHASE1" --validation-steps 200 \
          --resume-from-checkpoint latest --stage $stage --max-steps $steps --init-model photo --init-weights "$init"
    done
    $LAUNCH train_accelerate.py $COMMON $SHARP --validation-steps 200 --stage 256to512 --max-steps 200 \
        --init-model photo --init-weights "$INIT"
    P2="$SHARP --validation-steps 100 --gan-weight 0 --texture-pool 1"
    STRICT="--texture-weight 3 --grid-loss error --grid-weight 1500"
    PHASE2=${PHASE2:-$OUT-sharp-phase2}
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT --stage 64to128 --max-steps 300 \
        --init-model sharp --init-weights "$PHASE1" --output-dir "$PHASE2"
    $LAUNCH train_accelerate.py $COMMON $P2 --texture-weight 10 --grid-weight 300 --stage 128to256 --max-steps 400 \
        --init-model sharp --init-weights "$PHASE1" --output-dir "$PHASE2"
    # Phase 3: 128to256 again, now on what the 64to128 above makes of inputs 4x smaller
    # (--input-from), as the demo's 4x chains them, with a penalty on a grid of period 4
    # (the first stage's lattice, which the second otherwise learns to sharpen into texture),
    # 500 steps with no adversarial term, then 600 more with it back at 0.3 against the
    # discriminator on VGG16 features (--disc vgg), which learns in tens of steps where the
    # U-Net on pixels sat at chance (experiments/sharp-vgg-gan)
    PHASE3=${PHASE3:-$OUT-sharp-phase3}
    PHASE3B=${PHASE3B:-$OUT-sharp-phase3b}
    CHAIN="$P2 --texture-weight 10 --grid-weight 300 --grid4-weight 300 --stage 128to256"
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 500 --init-model sharp --init-weights "$PHASE2" \
        --input-from "$PHASE2" --output-dir "$PHASE3"
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 600 --init-model sharp --init-weights "$PHASE3" \
        --input-from "$PHASE2" --disc vgg --gan-weight 0.3 --output-dir "$PHASE3B"
    # Phase 4: the discriminator gets a head at the image's own resolution (--disc-taps 0,...,
    # VGG16 ReLU 2), and 64to128 gets the adversarial term too, which cut its x2 LPIPS by a
    # quarter; then 128to256 once more on the new 64to128's results (experiments/sharp-full-res-disc).
    PHASE4=${PHASE4:-$OUT-sharp-phase4}
    PHASE4L=${PHASE4L:-$OUT-sharp-phase4-64to128}
    PHASE4C=${PHASE4C:-$OUT-sharp-phase4-128to256}
    FULL="--disc vgg --disc-taps 0,1,2,3"
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 900 --init-model sharp --init-weights "$PHASE3B" \
        --input-from "$PHASE2" $FULL --gan-weight 0.3 --output-dir "$PHASE4"
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT $FULL --gan-weight 0.3 --stage 64to128 --max-steps 500 \
        --init-model sharp --init-weights "$PHASE2" --output-dir "$PHASE4L"
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 500 --init-model sharp --init-weights "$PHASE4" \
        --input-from "$PHASE4L" $FULL --gan-weight 0.3 --output-dir "$PHASE4C"
    # Phase 5, for fine detail: 64to128 from phase 2 again with the adversarial weight raised
    # run by run (0.6, 1.5, 3.0), and 128to256 from phase 4's at weight 1.0 on the results of
    # the first of those (0.6), so that it sharpens the last one's detail once more: on held-out
    # photos the 4x's fine detail rose by half, its LPIPS at JPEG 75 stayed
    # (experiments/sharp-crisp).
    PHASE5A=${PHASE5A:-$OUT-sharp-phase5-gan0.6}
    PHASE5B=${PHASE5B:-$OUT-sharp-phase5-gan1.5}
    PHASE5C=${PHASE5C:-$OUT-sharp-phase5-128to256}
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT $FULL --gan-weight 0.6 --stage 64to128 --max-steps 400 \
        --init-model sharp --init-weights "$PHASE2" --output-dir "$PHASE5A"
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT $FULL --gan-weight 1.5 --stage 64to128 --max-steps 400 \
        --init-model sharp --init-weights "$PHASE5A" --output-dir "$PHASE5B"
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT $FULL --gan-weight 3.0 --stage 64to128 --max-steps 300 \
        --init-model sharp --init-weights "$PHASE5B"
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 400 --init-model sharp --init-weights "$PHASE4C" \
        --input-from "$PHASE5A" $FULL --gan-weight 1.0 --output-dir "$PHASE5C"
    # Phase 6: that 128to256 300 steps more at weight 1.2, on the same inputs: the 4x's fine
    # detail up by a tenth for 0.011 of held-out LPIPS, to reach the crispness targets of docs/results.md
    # (experiments/sharp-phase6). Then the 8x stack from the three, as 64to128.
    $LAUNCH train_accelerate.py $COMMON $CHAIN --max-steps 300 --init-model sharp --init-weights "$PHASE5C" \
        --input-from "$PHASE5A" $FULL --gan-weight 1.2
    $LAUNCH train_accelerate.py $COMMON $P2 $STRICT --stage 64to512 --max-steps 100 --patch-size 192 \
        --init-weights "$OUT"
    ;;
  esac
done
python -m upscaler evaluate --data ../shared/data/cats/val --weights "$OUT" --update-card
