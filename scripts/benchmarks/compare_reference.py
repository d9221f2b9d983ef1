"""python scripts/benchmarks/compare_reference.py --noise=0.6,0.8 --seeds=0,1,2

CE, ELR and ELR+ side by side: elr_tf (`model.fit`) and a PyTorch implementation.
Needs the benchmark packages first
(`pip install -r requirements.txt -r scripts/benchmarks/requirements-bench.txt`).

The setting (fixed, the one ELR+ was found to trail on): Fashion-MNIST, a
random 10,000-example subset split 90/10 per class (the 1,000 validation
examples are not used), symmetric noise over all ten classes (the true class
included), no augmentation; the `plain_cnn` backbone (conv3x3(32)-BN-ReLU-
pool, conv3x3(64)-BN-ReLU-pool, dense 256-ReLU, dense 10); SGD lr 0.02,
momentum 0.9, coupled weight decay 5e-4 on every weight, cosine decay per
step to 1e-3 over `--epochs` (20), batch 128; beta 0.7, lambda 3; ELR+ with
mixup alpha 1, weight averaging 0.997 ramped over `ema_step=500` steps, no
ramp of the ELR term.

For every noise rate and seed (the seed draws the subset, the split, the
noisy labels and the initial weights), both frameworks get the same
normalised images and the same noisy labels. By default each starts as its
users would run the method: PyTorch from its own initialisation (its own
draw), elr_tf from `build_backbone(..., init="reference")`, the same
distribution, U(+-1/sqrt(fan_in)), drawn by Keras. `--same_weights` instead
copies elr_tf's initial weights (of `--init`) into the PyTorch networks
(`reference_torch.load_keras_weights`): a check of the step maths rather
than of the method. Shuffles and mixup draws are each framework's own.

- elr_tf: `elr_tf.ELRModel` (CE: `lam=0`) or `elr_tf.ELRPlusModel` trained
  with `model.fit`, as user code would; ELR+ with `--data_order` and
  `--teacher_span` (defaults: the reference's schedule).
- PyTorch (`scripts/benchmarks/reference_torch.py`): written from the method
  specification; ELR+ follows the reference trainer's order (per epoch,
  network 1's full pass over its own shuffle with network 2's averaged copy
  frozen, then network 2's).

Every finished run is appended to `--results` (JSON lines), so a grid can be
split over several processes (`--frameworks`, `--methods`) and a rerun skips
runs already there; the table printed at the end reads all of them. The
final test accuracy is on the 10,000 clean test images; seconds per epoch
are training time only (for ELR+ both networks).
"""

import importlib.util
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FRAMEWORKS = ("elr_tf", "pytorch")
METHODS = ("ce", "elr", "elr_plus")
METHOD_NAMES = {"ce": "CE", "elr": "ELR", "elr_plus": "ELR+"}

_NOISE = flags.DEFINE_list("noise", ["0.6", "0.8"], "Symmetric noise rates.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (data, noise, initial weights).")
_FRAMEWORKS = flags.DEFINE_list("frameworks", list(FRAMEWORKS), "Frameworks to train.")
_METHODS = flags.DEFINE_list("methods", list(METHODS), "Methods to train.")
_EPOCHS = flags.DEFINE_integer("epochs", 20, "Epochs.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 10000, "Subset size (90% trains).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Fashion-MNIST directory (None: the default).")
_DATA_ORDER = flags.DEFINE_enum(
    "data_order", "separate", ["separate", "shared"], "elr_tf ELR+ `data_order`."
)
_TEACHER_SPAN = flags.DEFINE_string(
    "teacher_span", "epoch", "elr_tf ELR+ `teacher_span`: epoch, step or a number of steps."
)
_INIT = flags.DEFINE_enum(
    "init",
    "reference",
    ["reference", "keras"],
    "elr_tf's initialisation (`build_backbone(init=)`).",
)
_SAME_WEIGHTS = flags.DEFINE_bool(
    "same_weights",
    False,
    "Copy elr_tf's initial weights into the PyTorch networks (default: PyTorch draws its own).",
)
_THREADS = flags.DEFINE_integer("threads", 0, "CPU threads per framework (0: its default).")
_RESULTS = flags.DEFINE_string(
    "results", "compare_reference.jsonl", "JSON-lines file the runs are appended to."
)
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Print the table of --results only.")


def load_setting(noise, seed, num_examples=10000, data_dir=None):
    """The comparison's data: normalised NHWC float32 arrays and labels.

    Returns:
        dict with `x_train`, `y_train` (noisy), `true_train`, `x_test`,
        `y_test` and `wrong` (fraction of wrong training labels).
    """
    from elr_tf.experiment.assemble import load_noisy_data
    from elr_tf.experiment.config import TrainConfig

    config = TrainConfig(
        dataset="fashion_mnist",
        data_dir=data_dir,
        num_train=num_examples,
        val_fraction=0.1,
        noise_rate=noise,
        seed=seed,
    ).validate()
    data, wrong = load_noisy_data(config)

    def normalised(images):
        images = np.asarray(images, np.float32) / 255.0
        images = images.reshape(len(images), *data.image_shape)
        return ((images - np.asarray(data.mean)) / np.asarray(data.std)).astype(np.float32)

    return {
        "x_train": normalised(data.train.features),
        "y_train": np.asarray(data.train.labels, np.int64),
        "true_train": np.asarray(data.train.true_labels, np.int64),
        "x_test": normalised(data.test.features),
        "y_test": np.asarray(data.test.labels, np.int64),
        "wrong": float(wrong),
    }


def initial_weights(method, seed, init="reference"):
    """Keras `plain_cnn` initial weights for a run: one list, or two for ELR+."""
    import keras

    from elr_tf.models import backbones

    keras.utils.set_random_seed(seed)
    count = 2 if method == "elr_plus" else 1
    weights = [
        backbones.build_backbone("plain_cnn", 10, init=init).get_weights() for _ in range(count)
    ]
    return weights if count == 2 else weights[0]


def train_elr_tf(
    method,
    setting,
    *,
    seed,
    init_weights,
    epochs=20,
    data_order="separate",
    teacher_span="epoch",
    batch_size=128,
):
    """Trains one method with elr_tf's models and `model.fit`.

    Returns:
        dict with `test_accuracy` and `seconds_per_epoch` (mean over the
        epochs after the first, which includes tracing).
    """
    import keras

    import elr_tf
    from elr_tf.experiment.callbacks import EpochTimer
    from elr_tf.models import backbones

    x, y = setting["x_train"], setting["y_train"]
    steps = -(-len(x) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.02, decay_steps=epochs * steps, alpha=1e-3 / 0.02
    )

    def network(weights):
        net = backbones.build_backbone("plain_cnn", 10, weight_decay=5e-4)
        net.set_weights(weights)
        return net

    keras.utils.set_random_seed(seed)
    if method == "elr_plus":
        model = elr_tf.ELRPlusModel(
            network(init_weights[0]),
            network(init_weights[1]),
            num_examples=len(x),
            num_classes=10,
            beta=0.7,
            lam=3.0,
            data_order=data_order,
            teacher_span=teacher_span,
        )
        shuffles = 2 if data_order == "separate" else 1
        dataset = elr_tf.with_index(x, y, batch_size=batch_size, seed=seed, shuffles=shuffles)
        callbacks = [elr_tf.Mixup(1.0, seed=seed), elr_tf.WeightAveraging(0.997, ema_step=500)]
    else:
        model = elr_tf.ELRModel(
            network(init_weights),
            num_examples=len(x),
            num_classes=10,
            beta=0.7,
            lam=3.0 if method == "elr" else 0.0,
        )
        dataset = elr_tf.with_index(x, y, batch_size=batch_size, seed=seed)
        callbacks = []
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), metrics=["accuracy"])
    timer = EpochTimer()
    progress = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: print(
            f"  epoch {epoch + 1}: {timer.seconds[-1]:.1f} s, loss {logs['loss']:.4f}", flush=True
        )
    )
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[*callbacks, timer, progress])
    _, accuracy = model.evaluate(setting["x_test"], setting["y_test"], batch_size=1000, verbose=0)
    seconds = timer.seconds[1:] or timer.seconds
    return {"test_accuracy": float(accuracy), "seconds_per_epoch": float(np.mean(seconds))}


def train_pytorch(method, setting, *, seed, init_weights, epochs=20, threads=None):
    """Trains one method with `scripts/benchmarks/reference_torch.py`."""
    import reference_torch

    result = reference_torch.train(
        method,
        setting["x_train"],
        setting["y_train"],
        setting["x_test"],
        setting["y_test"],
        seed=seed,
        init_weights=init_weights,
        epochs=epochs,
        threads=threads,
        log=lambda line: print(f"  {line}", flush=True),
    )
    return {
        "test_accuracy": float(result["test_accuracy"]),
        "seconds_per_epoch": float(result["seconds_per_epoch"]),
    }


def run_key(record):
    """What identifies a run in `--results`."""
    return (
        record["framework"],
        record["method"],
        record["noise"],
        record["seed"],
        record["epochs"],
        record.get("data_order", ""),
        record.get("teacher_span", ""),
        record.get("num_examples", 10000),
        *starting_point(record),
    )


def starting_point(record):
    """`(init, weights)` of a record: elr_tf's initialisation and whether the
    PyTorch side copied it (`"same"`) or drew its own (`"own"`). Records
    from before these fields started from Keras's initialisation, copied."""
    return record.get("init", "keras"), record.get("weights", "same")


def read_results(path):
    """The records of a `--results` file (none when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def format_table(records):
    """The side-by-side table: mean (and per-seed) final test accuracy.

    One row per (noise, method), with the mean fraction of wrong training
    labels over the seeds; columns PyTorch and elr_tf, each the mean over
    its seeds with the seeds' values, then elr_tf - PyTorch over the seeds
    both have, and seconds per epoch of elr_tf.
    """
    lines = [
        "| noise (wrong) | method | PyTorch | elr_tf | elr_tf - PyTorch | elr_tf s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    noises = sorted({r["noise"] for r in records})
    for noise in noises:
        for method in METHODS:
            rows = [r for r in records if r["noise"] == noise and r["method"] == method]
            if not rows:
                continue
            by = {fw: {r["seed"]: r for r in rows if r["framework"] == fw} for fw in FRAMEWORKS}

            def cell(framework, by=by):
                runs = by[framework]
                if not runs:
                    return "—"
                values = [runs[s]["test_accuracy"] for s in sorted(runs)]
                seeds = " / ".join(f"{v:.4f}" for v in values)
                return f"{np.mean(values):.4f} ({seeds})" if len(values) > 1 else seeds

            common = sorted(set(by["elr_tf"]) & set(by["pytorch"]))
            gap = "—"
            if common:
                differences = [
                    by["elr_tf"][s]["test_accuracy"] - by["pytorch"][s]["test_accuracy"]
                    for s in common
                ]
                gap = f"{100 * np.mean(differences):+.2f} pts"
            seconds = [r["seconds_per_epoch"] for r in by["elr_tf"].values()]
            timing = f"{np.mean(seconds):.1f}" if seconds else "—"
            # Mean over the seeds of the fraction of wrong training labels.
            wrong = np.mean(list({r["seed"]: r["wrong"] for r in rows}.values()))
            lines.append(
                f"| {noise:.0%} ({wrong:.1%}) | {METHOD_NAMES[method]} | "
                f"{cell('pytorch')} | {cell('elr_tf')} | {gap} | {timing} |"
            )
    return "\n".join(lines)


def _check_choices(name, values, allowed):
    for value in values:
        if value not in allowed:
            raise app.UsageError(
                f"--{name} must list values from {', '.join(allowed)}. Received: --{name}={value}"
            )


def main(argv):
    del argv
    _check_choices("frameworks", _FRAMEWORKS.value, FRAMEWORKS)
    _check_choices("methods", _METHODS.value, METHODS)
    if "pytorch" in _FRAMEWORKS.value and importlib.util.find_spec("torch") is None:
        raise app.UsageError(
            "--frameworks=pytorch needs torch: pip install -r "
            "scripts/benchmarks/requirements-bench.txt (or pass --frameworks=elr_tf)."
        )
    try:
        noises = [float(v) for v in _NOISE.value]
        seeds = [int(v) for v in _SEEDS.value]
    except ValueError as error:
        raise app.UsageError(f"--noise takes rates and --seeds integers: {error}") from None
    from elr_tf.experiment.config import teacher_span_argument, teacher_span_flag

    try:
        span_flag = teacher_span_flag("--teacher_span", _TEACHER_SPAN.value)
        teacher_span = teacher_span_argument(span_flag)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    threads = _THREADS.value or None
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    if not _REPORT_ONLY.value:
        done = {run_key(r) for r in read_results(_RESULTS.value)}
        for noise in noises:
            for seed in seeds:
                setting = None
                for method in _METHODS.value:
                    for framework in _FRAMEWORKS.value:
                        record = {
                            "framework": framework,
                            "method": method,
                            "noise": noise,
                            "seed": seed,
                            "epochs": _EPOCHS.value,
                            "num_examples": _NUM_EXAMPLES.value,
                            "init": _INIT.value,
                            "weights": "same" if _SAME_WEIGHTS.value else "own",
                        }
                        if framework == "elr_tf" and method == "elr_plus":
                            record["data_order"] = _DATA_ORDER.value
                            record["teacher_span"] = _TEACHER_SPAN.value
                        if run_key(record) in done:
                            continue
                        if setting is None:
                            setting = load_setting(
                                noise, seed, _NUM_EXAMPLES.value, _DATA_DIR.value
                            )
                        print(
                            f"{framework} {METHOD_NAMES[method]}, noise {noise}, seed {seed}",
                            flush=True,
                        )
                        weights = initial_weights(method, seed, _INIT.value)
                        if framework == "elr_tf":
                            result = train_elr_tf(
                                method,
                                setting,
                                seed=seed,
                                init_weights=weights,
                                epochs=_EPOCHS.value,
                                data_order=_DATA_ORDER.value,
                                teacher_span=teacher_span,
                            )
                        else:
                            result = train_pytorch(
                                method,
                                setting,
                                seed=seed,
                                init_weights=weights if _SAME_WEIGHTS.value else None,
                                epochs=_EPOCHS.value,
                                threads=threads,
                            )
                        record.update(result, wrong=setting["wrong"], threads=threads or 0)
                        print(f"  test accuracy {result['test_accuracy']:.4f}", flush=True)
                        with open(_RESULTS.value, "a") as f:
                            f.write(json.dumps(record) + "\n")
    records = [
        r
        for r in read_results(_RESULTS.value)
        if r["epochs"] == _EPOCHS.value
        and r.get("num_examples", 10000) == _NUM_EXAMPLES.value
        and starting_point(r) == (_INIT.value, "same" if _SAME_WEIGHTS.value else "own")
        and (
            r["framework"] != "elr_tf"
            or r["method"] != "elr_plus"
            or (r["data_order"], r["teacher_span"]) == (_DATA_ORDER.value, _TEACHER_SPAN.value)
        )
    ]
    pytorch_start = "copies it" if _SAME_WEIGHTS.value else "draws its own"
    print(
        f"Fashion-MNIST, {_NUM_EXAMPLES.value} examples (90% train), symmetric noise, "
        f"plain_cnn, {_EPOCHS.value} epochs; elr_tf init={_INIT.value}, PyTorch "
        f"{pytorch_start}; elr_tf ELR+ data_order={_DATA_ORDER.value}, "
        f"teacher_span={_TEACHER_SPAN.value}; final test accuracy, mean (per seed)"
    )
    print(format_table(records))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app.run(main)
