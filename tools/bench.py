"""``make bench``: online mining against its peers, timed in the same run.

Forward + backward, D = 128, 8 samples per class, on the GPU when there is one:

- tripletlab's batch-all, batch-hard and semi-hard, in PyTorch and TensorFlow (in a
  ``tf.function``, as Keras runs them; ``tl.tf-xla``: under ``jit_compile=True``, where
  shapes cannot depend on the labels and batch-all and semi-hard sort each anchor's row,
  the documented fallback). TensorFlow's first call at a new shape compiles its XLA
  kernels: ``first_s`` records that call's time (compile included);
- pytorch-metric-learning (PML), in the two configurations found in real use: for
  batch-all ``TripletMarginLoss`` alone (all triplets, ``get_all_triplets_indices``) and
  ``TripletMarginMiner("all")`` + ``TripletMarginLoss`` ("PML miner batch-all": the miner
  keeps the triplets with a positive hinge, the loss averages them: batch-all's
  quantity); ``BatchHardMiner`` + ``TripletMarginLoss`` with a ``MeanReducer``
  (batch-hard); ``TripletMarginMiner("semihard")`` + ``TripletMarginLoss`` (PML's
  semi-hard miner keeps every semi-hard triplet, not one negative per pair as FaceNet's
  rule does: timings only, not the same quantity);
- the cube formulation of batch-all (a ``B x B x B`` tensor of hinges, in PyTorch);
- one ``B x B`` Gram matrix product, forward + backward: the unit of the ratios.
- the softmax losses (issue 15, a block of their own below): tripletlab's InfoNCE and
  supervised contrastive (and NT-Xent: two views per instance) against PML's
  ``SupConLoss`` and ``NTXentLoss`` and the plain fused softmax
  (``F.cross_entropy(cos / t, arange(B))``), drawn in ``softmax_time_vs_B.png``.

Each measurement runs in a fresh process, so that its peak memory (RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) is its own. A peer whose memory would
exceed ``--max-gib`` is skipped, and the table says so. Where tripletlab and PML
compute the same quantity (batch-all, batch-hard), their losses must agree; the CSV
records it. Writes ``<out>/results.csv``, ``<out>/results.md``, ``<out>/machine.txt``
and ``<out>/time_vs_B.png``; ``--out benchmarks`` replaces the committed results.

``python tools/bench.py --smoke --out DIR`` runs B = 64 in-process (the test suite's
check that this script works); ``--methods`` and ``--sizes`` restrict a run (comma
separated); with ``--update`` their rows replace those of ``<out>/results.csv`` (after a
fix to one method: ``machine.txt`` records which rows were measured again).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from tripletlab._blocks import WHOLE_MATRIX_ROWS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

FEATURES = 128
PER_CLASS = 8
MARGIN = 0.2
SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
METHODS = (
    "gram matmul",
    "tl.torch batch-all",
    "tl.torch batch-hard",
    "tl.torch semi-hard",
    "tl.tf batch-all",
    "tl.tf batch-hard",
    "tl.tf semi-hard",
    "tl.tf-xla batch-all",
    "tl.tf-xla batch-hard",
    "tl.tf-xla semi-hard",
    "PML batch-all",
    "PML miner batch-all",
    "PML batch-hard",
    "PML semi-hard*",
    "cube batch-all",
)
SAME_QUANTITY = {  # agrees_with_PML: the loss equals every one of these peers'
    "tl.torch batch-all": ("PML batch-all", "PML miner batch-all"),
    "tl.torch batch-hard": ("PML batch-hard",),
}
PEER = {
    "tl.torch batch-all": "PML batch-all",
    "tl.torch batch-hard": "PML batch-hard",
    "tl.torch semi-hard": "PML semi-hard*",
}
PEER_MINER = {"tl.torch batch-all": "PML miner batch-all"}  # x_PML_miner
TORCH_PEER = {  # x_torch: TensorFlow's time over PyTorch's for the same loss
    f"tl.{framework} {kind}": f"tl.torch {kind}"
    for framework in ("tf", "tf-xla")
    for kind in ("batch-all", "batch-hard", "semi-hard")
}


# --------------------------------------------------------------------------- softmax losses
# (issue 15) InfoNCE and supervised contrastive / NT-Xent, temperature TEMPERATURE: the
# methods, their peers and memory estimates, and how one run is set up, all in this block.

TEMPERATURE = 0.1
VIEWS = 2  # NT-Xent: two views per instance, labels the instance ids
SOFTMAX_METHODS = (
    "tl.torch info-nce",
    "tl.torch supcon",
    "tl.torch nt-xent",
    "tl.tf info-nce",
    "tl.tf supcon",
    "PML SupConLoss",
    "PML NTXentLoss",
    "plain fused softmax",
)
METHODS += SOFTMAX_METHODS
SOFTMAX_PEER = {  # the same quantity on the same inputs: the losses must agree too
    "tl.torch info-nce": "plain fused softmax",
    "tl.torch supcon": "PML SupConLoss",
    "tl.torch nt-xent": "PML NTXentLoss",
}
SAME_QUANTITY.update({method: (peer,) for method, peer in SOFTMAX_PEER.items()})
PEER.update(SOFTMAX_PEER)
PEER.update({"tl.tf info-nce": "plain fused softmax", "tl.tf supcon": "PML SupConLoss"})
SOFTMAX_NOTE = (
    f" Softmax losses: temperature {TEMPERATURE}; info-nce pairs row i of two batches "
    "(peer: plain fused softmax, ``F.cross_entropy(cos / t, arange(B))``); supcon uses "
    f"the {PER_CLASS} per class labels (peer: PML SupConLoss); nt-xent is supcon with "
    f"{VIEWS} views per instance (peer: PML NTXentLoss on the same labels)."
)


def softmax_gib(method: str, size: int) -> float:
    """A rough upper bound of a softmax method's memory."""
    if method.startswith("tl."):  # row blocks of 2^24 logits above 4096 rows
        return min(size, 4096) * size * 4 * 6 / 2**30
    if method == "PML NTXentLoss":  # a (positive pairs) x (negative pairs) matrix, a few
        positive_pairs = size * (VIEWS - 1)
        return positive_pairs * size * (size - VIEWS) * 4 * 3 / 2**30
    return size * size * 4 * 12 / 2**30  # PML SupConLoss, fused: B x B matrices


def softmax_labels(method: str, size: int):
    import torch

    per_class = VIEWS if method.endswith(("nt-xent", "NTXentLoss")) else PER_CLASS
    return torch.arange(size) % (size // per_class)  # the views of a class apart


def softmax_torch_case(method: str, size: int):
    """``(run, value, device)`` of a torch softmax method, as ``torch_case``."""
    import torch
    import torch.nn.functional as F

    from tripletlab import torch as tl
    from tripletlab.device import try_gpu

    device = try_gpu()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(size, FEATURES, generator=generator).to(device).requires_grad_(True)
    keys = torch.randn(size, FEATURES, generator=generator).to(device).requires_grad_(True)
    y = softmax_labels(method, size).to(device)
    if method == "tl.torch info-nce":
        loss = lambda: tl.info_nce_loss(x, keys, TEMPERATURE)  # noqa: E731
    elif method in ("tl.torch supcon", "tl.torch nt-xent"):
        loss = lambda: tl.supervised_contrastive_loss(x, y, TEMPERATURE)  # noqa: E731
    elif method == "plain fused softmax":
        target = torch.arange(size, device=device)

        def loss():
            logits = F.normalize(x) @ F.normalize(keys).T / TEMPERATURE
            return F.cross_entropy(logits, target)

    else:
        from pytorch_metric_learning import losses

        pml = (losses.SupConLoss if method == "PML SupConLoss" else losses.NTXentLoss)(
            temperature=TEMPERATURE
        )
        loss = lambda: pml(x, y)  # noqa: E731

    def run():
        x.grad = keys.grad = None
        loss().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run, lambda: float(loss().detach()), device


def softmax_tf_case(method: str, size: int):
    import numpy as np
    import tensorflow as tf

    from tripletlab import tensorflow as tl

    x = tf.Variable(tf.random.stateless_normal((size, FEATURES), seed=(0, 0)))
    keys = tf.Variable(tf.random.stateless_normal((size, FEATURES), seed=(0, 1)))
    y = tf.constant(np.asarray(softmax_labels(method, size)))
    if method == "tl.tf info-nce":
        fn = lambda: tl.info_nce_loss(x, keys, TEMPERATURE)  # noqa: E731
    else:
        fn = lambda: tl.supervised_contrastive_loss(x, y, TEMPERATURE)  # noqa: E731

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = fn()
        return value, tape.gradient(value, [x, keys], unconnected_gradients="zero")

    def run():
        _, grads = step()
        grads[0].numpy()  # wait for the result

    return run, lambda: float(step()[0]), None


def softmax_case(method: str, size: int):
    return (softmax_tf_case if method.startswith("tl.tf") else softmax_torch_case)(method, size)


def estimated_gib(method: str, size: int) -> float:
    """A rough upper bound of a method's memory, to skip what cannot fit."""
    if method in SOFTMAX_METHODS:
        return softmax_gib(method, size)
    triplets = size * (PER_CLASS - 1) * (size - PER_CLASS)
    if method in ("PML batch-all", "PML miner batch-all"):
        return triplets * 8 * 3 * 4 / 2**30  # int64 indices and float copies per triplet
    if method == "PML semi-hard*":
        return triplets * 8 * 3 * 2 / 2**30
    if method == "cube batch-all":
        return size**3 * 4 * 4 / 2**30  # a few float32 cubes
    if method.startswith(("tl.torch", "tl.tf ")):  # blocks of anchor rows above
        return min(size, WHOLE_MATRIX_ROWS) * size * 4 * 12 / 2**30  # WHOLE_MATRIX_ROWS
    if method.startswith("tl.tf-xla"):  # the whole matrix, sorted
        return size * size * 4 * 16 / 2**30
    return size * size * 4 * 12 / 2**30  # a dozen B x B float32 matrices


# --------------------------------------------------------------------------- one run


def tripletlab_loss(tl, method: str, x, y):
    """The loss closure of a ``tl.<framework> <kind>`` method, for either backend module."""
    return {
        "batch-all": lambda: tl.batch_all_triplet_loss(x, y, MARGIN)[0],
        "batch-hard": lambda: tl.batch_hard_triplet_loss(x, y, MARGIN),
        "semi-hard": lambda: tl.batch_semihard_triplet_loss(x, y, MARGIN),
    }[method.split()[-1]]


def torch_case(method: str, size: int):
    """``(run, value)``: a forward + backward closure and a function giving the loss."""
    import torch

    from tripletlab import torch as tl
    from tripletlab.device import try_gpu

    device = try_gpu()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(size, FEATURES, generator=generator).to(device).requires_grad_(True)
    y = (torch.arange(size) // PER_CLASS).to(device)
    if method == "gram matmul":
        loss = lambda: (x @ x.T).sum()  # noqa: E731
    elif method.startswith("tl.torch"):
        loss = tripletlab_loss(tl, method, x, y)
    elif method == "cube batch-all":
        loss = lambda: cube_batch_all(x, y)  # noqa: E731
    else:
        from pytorch_metric_learning import distances, losses, miners, reducers

        lp = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
        if method == "PML batch-all":
            pml = losses.TripletMarginLoss(MARGIN, distance=lp)
            loss = lambda: pml(x, y)  # noqa: E731
        elif method == "PML miner batch-all":
            pml = losses.TripletMarginLoss(MARGIN, distance=lp)
            miner = miners.TripletMarginMiner(MARGIN, distance=lp, type_of_triplets="all")
            loss = lambda: pml(x, y, miner(x, y))  # noqa: E731
        elif method == "PML batch-hard":
            pml = losses.TripletMarginLoss(MARGIN, distance=lp, reducer=reducers.MeanReducer())
            miner = miners.BatchHardMiner(distance=lp)
            loss = lambda: pml(x, y, miner(x, y))  # noqa: E731
        else:
            pml = losses.TripletMarginLoss(MARGIN, distance=lp)
            miner = miners.TripletMarginMiner(MARGIN, distance=lp, type_of_triplets="semihard")
            loss = lambda: pml(x, y, miner(x, y))  # noqa: E731

    def run():
        x.grad = None
        loss().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run, lambda: float(loss().detach()), device


def cube_batch_all(x, y):
    """Batch-all as most code writes it: every (a, p, n) hinge in one B x B x B tensor."""
    import torch

    from tripletlab import torch as tl

    d = tl.pairwise_distances(x)
    valid = tl.positive_mask(y)[:, :, None] & tl.negative_mask(y)[:, None, :]
    hinge = torch.relu(d[:, :, None] - d[:, None, :] + MARGIN) * valid
    n_positive = (hinge > 0).sum().clamp_min(1)
    return hinge.sum() / n_positive


def tf_case(method: str, size: int):
    import tensorflow as tf

    from tripletlab import tensorflow as tl

    x = tf.Variable(tf.random.stateless_normal((size, FEATURES), seed=(0, 0)))
    y = tf.range(size) // PER_CLASS
    fn = tripletlab_loss(tl, method, x, y)

    @tf.function(jit_compile=method.startswith("tl.tf-xla"))
    def step():
        with tf.GradientTape() as tape:
            value = fn()
        return value, tape.gradient(value, x)

    def run():
        _, grad = step()
        grad.numpy()  # wait for the result

    return run, lambda: float(step()[0]), None


def measure(method: str, size: int, repeats: int) -> dict:
    """Time one method at one size, in this process."""
    from tripletlab.timing import best_time

    case = tf_case if method.startswith("tl.tf") else torch_case
    run, value, device = (softmax_case if method in SOFTMAX_METHODS else case)(method, size)
    start = time.perf_counter()
    run()  # the first call: TensorFlow traces and compiles here
    first_s = time.perf_counter() - start
    seconds = best_time(run, repeats=repeats, warmup=0)
    if device is not None and device.type == "cuda":
        import torch

        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    row = {"method": method, "B": size, "seconds": seconds, "peak_mib": peak_mib}
    return row | {"loss": value(), "first_s": first_s}


# --------------------------------------------------------------------------- the table


def repeats_of(method: str, size: int) -> int:
    """Best of 3 up to B = 2048, and at 4096 (the size of the targets) for tripletlab and
    the Gram product; a single run where one takes seconds (the peers above 2048, every
    method above 4096)."""
    if size <= 2048 or (size <= 4096 and not method.startswith(("PML", "cube"))):
        return 3
    return 1


def run_all(sizes, methods, max_gib: float, in_process: bool) -> list[dict]:
    from tqdm.auto import tqdm

    rows = []
    jobs = [(size, method) for size in sizes for method in methods]
    for size, method in tqdm(jobs, desc="bench", unit="run"):
        if estimated_gib(method, size) > max_gib:
            rows.append({"method": method, "B": size, "skipped": f"needs > {max_gib:g} GiB"})
            continue
        repeats = repeats_of(method, size)
        if in_process:
            rows.append(measure(method, size, repeats))
            continue
        worker = [sys.executable, __file__, "--worker", method, str(size), str(repeats)]
        done = subprocess.run(worker, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["failed"])[-1][:80]
            rows.append({"method": method, "B": size, "skipped": reason})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return add_ratios(rows)


def add_ratios(rows: list[dict]) -> list[dict]:
    by_key = {(r["method"], r["B"]): r for r in rows}
    for row in rows:
        if "seconds" not in row:
            continue
        unit = by_key.get(("gram matmul", row["B"]), {})
        if "seconds" in unit:
            row["x_matmul"] = row["seconds"] / unit["seconds"]
        for column, peers in (
            ("x_PML", PEER),
            ("x_PML_miner", PEER_MINER),
            ("x_torch", TORCH_PEER),
        ):
            peer = by_key.get((peers.get(row["method"], ""), row["B"]), {})
            if "seconds" in peer:
                row[column] = row["seconds"] / peer["seconds"]
        same = [by_key.get((peer, row["B"]), {}) for peer in SAME_QUANTITY.get(row["method"], ())]
        losses = [peer["loss"] for peer in same if "loss" in peer]
        if losses:
            row["agrees_with_PML"] = all(
                abs(row["loss"] - loss) <= 1e-4 * max(1.0, abs(loss)) for loss in losses
            )
    return rows


def machine() -> str:
    import torch

    from tripletlab.device import try_gpu

    device = try_gpu()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {name}"
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "CPU " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def write_outputs(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = ["method", "B", "seconds", "peak_mib", "loss", "x_matmul", "x_PML"]
    columns += ["x_PML_miner", "x_torch", "first_s", "agrees_with_PML", "skipped"]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    described = machine()
    lines = [
        f"Forward + backward, D = {FEATURES}, {PER_CLASS} per class, margin {MARGIN}; "
        f"{described}. Time (peak memory, MiB); x matmul: ratio to one B x B Gram "
        "product; x PML: ratio to PML's path for the same loss (* PML's semi-hard miner "
        "keeps every semi-hard triplet: timings only); x PML miner: ratio to "
        "TripletMarginMiner('all') + TripletMarginLoss; x torch: TensorFlow's time over "
        "PyTorch's; first call: the first call's time (TensorFlow compiles there)." + SOFTMAX_NOTE,
        "",
        "| method | B | time | peak MiB | x matmul | x PML | x PML miner | x torch "
        "| first call | agrees with PML |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r and r["skipped"]:
            lines.append(f"| {r['method']} | {r['B']} | skipped: {r['skipped']} |" + " |" * 7)
            continue
        cells = [
            f"{r['seconds'] * 1e3:.1f} ms",
            f"{r['peak_mib']:.0f}",
            f"{r['x_matmul']:.1f}" if "x_matmul" in r else "",
            f"{r['x_PML']:.3f}" if "x_PML" in r else "",
            f"{r['x_PML_miner']:.3f}" if "x_PML_miner" in r else "",
            f"{r['x_torch']:.2f}" if "x_torch" in r else "",
            f"{r['first_s']:.2f} s" if "first_s" in r else "",
            str(r.get("agrees_with_PML", "")),
        ]
        lines.append(f"| {r['method']} | {r['B']} | " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "speed_table.md").write_text(speed_table(rows))
    (out / "machine.txt").write_text(f"{date.today().isoformat()}: {described}\n")
    plot(rows, out / "time_vs_B.png")
    plot_softmax(rows, out / "softmax_time_vs_B.png")


def plot_softmax(rows: list[dict], path: Path) -> None:
    """Time against B, log-log, of the softmax losses and the Gram product."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, method in enumerate(("gram matmul", *SOFTMAX_METHODS)):
        points = [(r["B"], r["seconds"]) for r in rows if r["method"] == method and "seconds" in r]
        if points:
            style = {"tl.torch": "-", "tl.tf": "-."}.get(method.split()[0], "--")
            colour = "black" if method == "gram matmul" else f"C{k}"
            ax.loglog(*zip(*points, strict=True), style, marker="o", color=colour, label=method)
    ax.set(xlabel="batch size B", ylabel="seconds (forward + backward)")
    ax.set_title(f"softmax losses, D = {FEATURES}, temperature {TEMPERATURE}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def speed_table(rows: list[dict], sizes=(2048, 4096, 16384)) -> str:
    """The README's Speed table: per size and loss, PyTorch and TensorFlow against PML
    and one Gram product (``<out>/speed_table.md``, pasted into the README)."""

    def time_of(row):
        if not row or "seconds" not in row:  # not run, or skipped
            return "skipped" if row else ""
        seconds = row["seconds"]
        return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"

    lines = [
        "| B | loss | PyTorch | TensorFlow | TF / torch | PML | PML miner "
        "| faster than PML | x one Gram product | peak RSS torch / TF |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(r["method"], r["B"]): r for r in rows}
    for size in sizes:
        for kind in ("batch-all", "batch-hard", "semi-hard"):
            torch_row = by_key.get((f"tl.torch {kind}", size), {})
            tf_row = by_key.get((f"tl.tf {kind}", size), {})
            star = "*" if kind == "semi-hard" else ""
            pml = by_key.get((PEER[f"tl.torch {kind}"], size))
            miner = by_key.get((PEER_MINER.get(f"tl.torch {kind}", ""), size))
            faster = [
                f"{1 / torch_row[c]:.1f}x" for c in ("x_PML", "x_PML_miner") if c in torch_row
            ]
            peaks = [f"{r['peak_mib']:.0f}" for r in (torch_row, tf_row) if "peak_mib" in r]
            cells = [
                str(size),
                kind,
                time_of(torch_row),
                time_of(tf_row),
                f"{tf_row['x_torch']:.2f}" if "x_torch" in tf_row else "",
                time_of(pml) + (star if pml and "seconds" in pml else ""),
                time_of(miner),
                " / ".join(faster),
                f"{torch_row['x_matmul']:.1f}" if "x_matmul" in torch_row else "",
                " / ".join(peaks) + " MiB" if peaks else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Time against B, log-log: one colour per loss, one line style per library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"batch-all": "C0", "batch-hard": "C1", "semi-hard": "C2", "matmul": "black"}
    styles = {"tl.torch": "-", "tl.tf": "-.", "tl.tf-xla": (0, (1, 1)), "PML": "--"}
    styles |= {"cube": ":", "gram": ":"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in METHODS:
        points = [(r["B"], r["seconds"]) for r in rows if r["method"] == method and "seconds" in r]
        if points and method not in SOFTMAX_METHODS:  # those: plot_softmax
            kind = method.split()[-1].rstrip("*")
            style = styles[method.split()[0]]
            marker = "s" if method == "cube batch-all" else "o"
            ax.loglog(
                *zip(*points, strict=True),
                linestyle=style,
                marker=marker,
                color=colours[kind],
                label=method,
            )
    ax.set(xlabel="batch size B", ylabel="seconds (forward + backward)")
    ax.set_title(f"online mining, D = {FEATURES}, {PER_CLASS} per class")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``results.csv`` back, with numbers as numbers (for ``--plot-only``)."""
    rows = []
    for row in csv.DictReader(open(path)):
        row = {key: value for key, value in row.items() if value != ""}
        row["B"] = int(row["B"])
        numbers = ("seconds", "peak_mib", "loss", "x_matmul", "x_PML", "x_PML_miner", "x_torch")
        for key in (*numbers, "first_s"):
            if key in row:
                row[key] = float(row[key])
        rows.append(row)
    return rows


def updated(rows: list[dict], new_rows: list[dict]) -> list[dict]:
    """``rows`` (a full run) with the rows of ``new_rows`` (same method and B) put in
    their place, and the ratios computed again."""
    new = {(r["method"], r["B"]): r for r in new_rows}
    return add_ratios([new.get((r["method"], r["B"]), r) for r in rows])


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--worker":
        method, size, repeats = argv[1], int(argv[2]), int(argv[3])
        print(json.dumps(measure(method, size, repeats)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--max-gib", type=float, default=12.0)
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all)")
    parser.add_argument("--smoke", action="store_true", help="B = 64, torch and PML, in-process")
    parser.add_argument("--plot-only", action="store_true", help="redraw <out>/results.csv")
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-measure --methods at --sizes and replace their rows in <out>/results.csv",
    )
    args = parser.parse_args(argv)
    if args.plot_only:
        rows = read_rows(args.out / "results.csv")
        plot(rows, args.out / "time_vs_B.png")
        plot_softmax(rows, args.out / "softmax_time_vs_B.png")
        return 0
    if args.smoke:
        methods = [m for m in METHODS if not m.startswith("tl.tf")]
        rows = run_all([64], methods, args.max_gib, in_process=True)
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        methods = METHODS if args.methods is None else args.methods.split(",")
        unknown = set(methods) - set(METHODS)
        if unknown:
            parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
        rows = run_all(sizes, methods, args.max_gib, in_process=False)
    if args.update:
        rows = updated(read_rows(args.out / "results.csv"), rows)
    write_outputs(rows, args.out)
    if args.update:
        with open(args.out / "machine.txt", "a") as f:
            f.write(f"re-measured on that day: {', '.join(methods)} at B = {args.sizes}\n")
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
