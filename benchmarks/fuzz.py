"""Fuzzed image files through the command line's path: ``images.open_checked`` + ``Upscaler``.

    python benchmarks/fuzz.py                    # 2,000 seeded cases (a few minutes on 2 cores)
    python benchmarks/fuzz.py --cases 100 --first 0

Each case (``tests/fuzz_files.py``: a small valid PNG, JPEG, GIF, WebP, TIFF or BMP,
mutated) is written to a file and run in a worker process, as the CLI runs a file:
open_checked -> check_output_size -> the 64to128 network. Allowed outcomes:

* ``upscaled``: a result of twice the (oriented) input's size;
* ``rejected``: ``ImageRejected`` with a message for a person.

Forbidden, and counted as failures: any other exception; a hang, i.e. 10 s without
progress (the worker reports each decoded file and each finished tile: a header that
declares 65535 x 29 pixels over a tiny body decodes to a real 1.9 MP image, whose
upscaling takes seconds of honest work; the worker is killed and restarted after a hang);
the worker's peak memory passing 2 GB during the case; the input file changed. Prints counts by outcome and every forbidden case; exits 1 if
there was one.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fuzzed files and the harness live with the tests

from fuzz_runner import fuzz  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--first", type=int, default=0, help="first seed")
    ap.add_argument("--motion", action="store_true",
                    help="animations and videos (tests/fuzz_files.motion_case) through the motion engine instead")
    args = ap.parse_args(argv)
    r = fuzz(args.cases, args.first, motion=args.motion)
    what = "animations and videos through upscale_motion" if args.motion else "files through open_checked + Upscaler"
    print(f"{r['cases']} fuzzed {what} (seeds {r['first']}..{r['first'] + r['cases'] - 1}, 64to128) in "
          f"{r['seconds']} s")
    print()
    print("| outcome | cases |")
    print("|---|---:|")
    for outcome in ("upscaled", "rejected", "forbidden"):
        print(f"| {outcome} | {r['counts'].get(outcome, 0)} |")
    print()
    print("| format | upscaled | rejected | forbidden |")
    print("|---|---:|---:|---:|")
    for fmt in sorted({k.split()[0] for k in r["by_format"]}):
        cells = [str(r["by_format"].get(f"{fmt} {o}", 0)) for o in ("upscaled", "rejected", "forbidden")]
        print(f"| {fmt} | " + " | ".join(cells) + " |")
    for f in r["forbidden"]:
        print(f"FORBIDDEN seed {f['seed']} ({f['file']}, {f['mutation']}): {f['detail']}")
    return 1 if r["forbidden"] else 0


if __name__ == "__main__":
    sys.exit(main())
