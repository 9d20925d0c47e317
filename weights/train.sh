#!/usr/bin/env bash
# The recipe that made the shipped weights (run from the repository root, ~1.5 h on a
# 2-core CPU). Each network's config.json records its exact command and wall time.
#
#   bash weights/train.sh                       # both models, all stages, into weights/
#   DATA=/path/to/photos bash weights/train.sh  # your own photos
set -euo pipefail
DATA=${DATA:-../shared/data/cats/train}
OUT=${OUT:-weights}
LAUNCH="accelerate launch --num_processes 1 --num_machines 1 --dynamo_backend no"
COMMON="--train-data-dir $DATA --output-dir $OUT --dataloader-num-workers 1 --validation-steps 500 --checkpointing-steps 500"

# default: ResidualUpsampler (32 features, 4 convs), L1, AdamW 1e-3, bf16 autocast (AMX)
$LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 64to128  --max-steps 4000
$LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 128to256 --max-steps 3000
$LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 256to512 --max-steps 3000
$LAUNCH --mixed_precision bf16 train_accelerate.py $COMMON --model default --stage 64to512  --max-steps 1200

# seed: the reference layout with the reference recipe (MSE, AdamW), fp32
$LAUNCH --mixed_precision no train_accelerate.py $COMMON --model seed --stage 64to128  --max-steps 1500
$LAUNCH --mixed_precision no train_accelerate.py $COMMON --model seed --stage 128to256 --max-steps 1500
$LAUNCH --mixed_precision no train_accelerate.py $COMMON --model seed --stage 256to512 --max-steps 1500
$LAUNCH --mixed_precision no train_accelerate.py $COMMON --model seed --stage 64to512  --max-steps 500
