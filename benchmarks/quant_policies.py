"""The seed's quantisation policies (Table 2) on CIFAR ResNet-20: memory and accuracy.

Rows 1-5 are Table 2 of the Siamese-tracker seed: first / hidden / last weight layers
and activations of FP32; INT16; INT16 / INT4 / INT8; INT16 / ternary / INT8; INT16 /
binary / INT8, activations INT32 (the seed's "INT 32"). Rows 4c/4l/5c/5l swap the
hidden layers' scale: Brevitas' constant 0.1 (c) or a learned scale (l), against the
statistics-based scale of rows 4 and 5; row 5t keeps one statistics scale per tensor.

For each policy: the convolution-parameter memory (trimkit's analytic count: weights at
their width plus scales and biases) beside the seed's MB and ratio, the whole model's
analytic and packed bytes, then top-1 right after calibration and after QAT with the
same CPU budget for every row (row 1 fine-tunes the float model with that budget).
ResNet-20 starts from the pretrained weights in ../shared/data/pretrained.

    python benchmarks/quant_policies.py [--epochs 2] [--train-images 10000] [--test-images 2000]
    python benchmarks/quant_policies.py --scales-on-lenet [--seeds 0,1] [--kinds binary:const,binary]

``--scales-on-lenet`` compares the scale kinds where no batch norm follows the hidden
layers to absorb a badly sized scale: LeNet-5 on the embedded MNIST subset (hidden:
one convolution and two dense layers), trained here first, then QAT with each kind.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from trimkit import data, load_weights, models, quant, train

PRETRAINED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pretrained" / "resnet20-12fca82f.th"
SEED_FP32_MB = 85.5
POLICIES = [
    ("1", "float32", 85.5),
    ("2", "int16,act=int32", 38.3),
    ("3", "first=int16,hidden=int4,last=int8,act=int32", 13.4),
    ("4", "first=int16,hidden=ternary,last=int8,act=int32", 9.3),
    ("5", "first=int16,hidden=binary,last=int8,act=int32", 7.2),
    ("4c", "first=int16,hidden=ternary:const,last=int8,act=int32", None),
    ("4l", "first=int16,hidden=ternary:learned,last=int8,act=int32", None),
    ("5c", "first=int16,hidden=binary:const,last=int8,act=int32", None),
    ("5l", "first=int16,hidden=binary:learned,last=int8,act=int32", None),
    ("5t", "first=int16,hidden=binary:tensor,last=int8,act=int32", None),
]


LENET_KINDS = ["binary:const", "binary", "binary:tensor", "binary:learned",
               "ternary:const", "ternary", "ternary:tensor", "ternary:learned"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales-on-lenet", action="store_true")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--kinds", default=",".join(LENET_KINDS), help="hidden formats for --scales-on-lenet")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--rows", default=",".join(row for row, _, _ in POLICIES))
    args = parser.parse_args()
    if args.scales_on_lenet:
        scales_on_lenet(args)
        return
    float_model = load_weights(models.create("resnet20"), PRETRAINED)
    normalization = models.origin(float_model).normalization()
    train_set = data.load("cifar10", "train", normalization=normalization).subset(args.train_images, seed=2)
    test_set = data.load("cifar10", "test", normalization=normalization).subset(args.test_images, seed=3)
    print(f"QAT budget per row: {args.epochs} epoch(s) on {len(train_set)} CIFAR-10 training images, SGD lr "
          f"{args.lr} cosine, momentum 0.9, weight decay 1e-4, batch 128, bf16 autocast where the CPU has it, "
          f"{os.cpu_count()} CPU cores; top-1 on {len(test_set)} test images; load average "
          f"{os.getloadavg()[0]:.2f} at start")
    print(f"pretrained float ResNet-20: top-1 {train.evaluate(float_model, test_set)['top1']:.2f} %")
    print("| # | policy | conv params B | ratio | seed MB | seed ratio | analytic B | packed B | top-1 calibrated "
          "| top-1 after QAT | QAT s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    wanted = set(args.rows.split(","))
    for row, policy, seed_mb in POLICIES:
        if row in wanted:
            print(_row(row, policy, seed_mb, float_model, train_set, test_set, args), flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def _row(row: str, policy: str, seed_mb: float | None, model, train_set, test_set, args) -> str:
    size = quant.size_report(model, policy)
    packed = quant.packed_size(model, policy)
    calibrated = train.evaluate(quant.quantize(model, policy, train_set), test_set)["top1"]
    train.seed_everything(0)
    started = time.perf_counter()
    result = quant.qat(model, policy, train_set, epochs=args.epochs, lr=args.lr, batch_size=128,
                       weight_decay=1e-4, progress=False)
    seconds = time.perf_counter() - started
    after = train.evaluate(result.model, test_set)["top1"]
    ratio = size.conv_param_bytes / size.float32_conv_param_bytes
    seed = (f"{seed_mb:.1f} | {seed_mb / SEED_FP32_MB:.3f}") if seed_mb is not None else "- | -"
    return (f"| {row} | {policy} | {size.conv_param_bytes:,} | {ratio:.3f} | {seed} | {size.analytic_bytes:,} | "
            f"{packed:,} | {calibrated:.2f} | {after:.2f} | {seconds:.0f} |")


def scales_on_lenet(args) -> None:
    normalization = models.spec("lenet5").normalization()
    train_set = data.load("mnist5k", "train", normalization=normalization)
    val_set = data.load("mnist5k", "val", normalization=normalization)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    print(f"LeNet-5 on mnist5k: float model trained 10 epochs (SGD lr 0.05), then QAT {args.epochs} epoch(s) "
          f"on {len(train_set)} images, SGD lr {args.lr}, per seed; top-1 on {len(val_set)} val images; "
          f"first=int8, last=int8, act=int8; load average {os.getloadavg()[0]:.2f}")
    print("| hidden | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean |")
    print("| --- | " + " | ".join("---:" for _ in seeds) + " | ---: |")
    floats = {}
    for seed in seeds:
        train.seed_everything(seed)
        floats[seed] = models.create("lenet5")
        train.fit(floats[seed], train_set, epochs=10, batch_size=64, lr=0.05, precision="fp32", progress=False)
    print("| float32 | " + " | ".join(f"{train.evaluate(floats[s], val_set)['top1']:.2f}" for s in seeds) + " | |")
    for kind in args.kinds.split(","):
        scores = []
        for seed in seeds:
            train.seed_everything(seed)
            result = quant.qat(floats[seed], f"first=int8,hidden={kind},last=int8,act=int8", train_set,
                               epochs=args.epochs, lr=args.lr, batch_size=64, precision="fp32", seed=seed,
                               progress=False)
            scores.append(train.evaluate(result.model, val_set)["top1"])
        print(f"| {kind} | " + " | ".join(f"{score:.2f}" for score in scores) + f" | {sum(scores) / len(scores):.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
