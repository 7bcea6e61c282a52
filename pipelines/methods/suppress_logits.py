#!/usr/bin/env python3
"""An external unlearning method for camu-pipe, in plain Python (standard library only).

Logit suppression for class removal: copy the original model and set the output-layer bias of
every forgotten class to -10000, so the model can no longer predict those classes. It is a
deliberately simple baseline (it hides the classes rather than removing what was learned) that
shows the contract every external method follows:

  inputs   --original DIR   model.safetensors + model.json of the original model
           --split DIR      split.json (forget / remain / sample indices, scenario)
  outputs  --out DIR        model.safetensors + model.json (same architecture), and metrics.json
                            with "method" and "unlearn_time_s"

camu-pipe caches the outputs, evaluates the model like any built-in method and compares it.
"""
import argparse
import json
import os
import struct
import sys
import time


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return header, bytearray(data[8 + n :])


def write_safetensors(path, header, body):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # the format aligns the data to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(body)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--value", type=float, default=-10000.0)
    args = ap.parse_args()
    start = time.time()

    with open(os.path.join(args.split, "split.json")) as f:
        split = json.load(f)
    if split.get("scenario") != "class":
        sys.exit("suppress_logits: applies to class removal only (this split is %r)" % split.get("scenario"))
    with open(os.path.join(args.original, "model.json")) as f:
        spec = json.load(f)
    head = "fc3" if spec["arch"] == "cnn" else "fc"

    header, body = read_safetensors(os.path.join(args.original, "model.safetensors"))
    bias = header.get(head + ".bias")
    if bias is None or bias["dtype"] != "F32":
        sys.exit("suppress_logits: no float32 tensor %s.bias in the checkpoint" % head)
    begin = bias["data_offsets"][0]
    for c in split["classes"]:
        struct.pack_into("<f", body, begin + 4 * c, args.value)

    write_safetensors(os.path.join(args.out, "model.safetensors"), header, body)
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(spec, f)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"method": "suppress_logits", "unlearn_time_s": time.time() - start}, f)


if __name__ == "__main__":
    main()
