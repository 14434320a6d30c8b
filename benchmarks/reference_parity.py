"""Our CBiGAN against the official TensorFlow code, run side by side from the same weights and batches.

The official code (github.com/fabiocarrara/cbigan-ad, a checkout given with ``--official``) is run, never
copied: a second Python with ``tensorflow-cpu==2.21.0`` and ``tf-keras==2.21.0`` (``--tf-python``; made by
``scripts/setup_reference.sh``) imports its ``model.py``, ``losses.py`` and ``score.py`` (their imports of
``tensorflow_addons`` and ``expman``, dead packages the code paths used here do not need, are stubbed), builds
E, G and D with the default flags and runs them. This process loads those networks' weights into ours
(:mod:`anomalib_cbigan.models.cbigan.official_weights`) and runs ours on the same inputs.

``check`` (default): on one batch of bottle training images, with the same prior ``z`` and penalty ``eps``
(the official ``K.random_normal`` / ``K.random_uniform`` and our ``torch.randn`` / ``torch.rand`` return them):
forward outputs (E(x), G(z), G(E(x)), D on real and fake pairs, f_D, the anomaly score ``A(x)``), the critic loss
with its gradient penalty and the E/G loss with its consistency terms (the official ``train_step`` against our
``Cbigan.training_step``), the weights after one optimiser step of each, the official first step (D and E/G
together) and the official weight average of E and G. At ``--image-size 64`` (the texture protocol's tiles) it
also scores four whole 512-px grid test images, as the official ``score.anomaly_score`` does (every 64-px tile,
the maximum) and as ours does with ``tile_images=True``. Our defaults that differ from the official code are
switched to the official behaviour where the row says so (Adam's epsilon: TensorFlow adds ``1e-7`` to
``sqrt(v)`` before bias correction, which is ``eps = 1e-7 / sqrt(1 - beta2^t)`` in PyTorch's form, ours
``1e-7`` after it: the two differ in the first steps only).

``curves``: both implementations trained from the same initial weights on the same sequence of bottle batches
(no augmentation, the official object protocol), evaluated every ``--eval-every`` batches on the bottle test
images: image AUROC of ``A(x)`` and the mean per-pixel L1 of ``x - G(E(x))`` on the good test images. The official
side follows ``train.py``'s loop (its critic/E-G schedule, its first step updating both, its weight average).

Usage:
    bash scripts/setup_reference.sh   # the TensorFlow venv (.venv-reference) and ../cbigan-ad
    python benchmarks/reference_parity.py --official /path/to/cbigan-ad --tf-python .venv-reference/bin/python
    python benchmarks/reference_parity.py --official ... --tf-python ... --image-size 64 \
        --output benchmarks/results/reference_parity_check_64   # the texture tiles' size, with the tiled score
    python benchmarks/reference_parity.py --official ... --tf-python ... --mode curves --seeds 0 1 2

Writes ``benchmarks/results/reference_parity_{check,curves}.{csv,md}`` and ``reference_parity_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LATENT = 64
CHANNELS = 3
GP_WEIGHT = 10.0
ADAM = {"generator": (0.0, 0.1), "critic": (0.0, 0.9)}  # official train.py betas (ours are the same)
NETWORKS = ("encoder", "generator", "critic")
# Each official train_step call: (d_train, ge_train).
STEPS = {"critic": (True, False), "generator": (False, True), "both": (True, True)}
CRITIC_STEPS = 5  # official train.py --d-iter and our default critic_steps


# ----------------------------------------------------------------------------------------------------------------
# The official side: runs in the TensorFlow Python, imports nothing of ours (this file is its only code).


def _import_official(checkout: str) -> types.SimpleNamespace:
    """The official ``model``, ``losses`` and ``score`` modules, with their dead imports stubbed."""
    addons = types.ModuleType("tensorflow_addons")  # model.py lists InstanceNormalization, unused by default flags
    addons.layers = types.SimpleNamespace(InstanceNormalization=None)
    addons.image = types.SimpleNamespace(rotate=None)
    expman = types.ModuleType("expman")  # score.py/train.py's experiment manager, not used here
    expman.Experiment = expman.from_dir = None
    sys.modules.setdefault("tensorflow_addons", addons)
    sys.modules.setdefault("expman", expman)
    sys.path.insert(0, checkout)
    import losses  # noqa: PLC0415
    import model  # noqa: PLC0415
    import score  # noqa: PLC0415

    return types.SimpleNamespace(model=model, losses=losses, score=score)


def _build_official(official: types.SimpleNamespace, size: int, seed: int) -> tuple[dict[str, Any], dict[str, list]]:
    """E, G, D with the default flags, and each network's Conv2D/Dense layers in creation order."""
    import tensorflow as tf  # noqa: PLC0415

    layers = official.model.L
    created: list = []

    class RecordingLayers:  # model.py calls L.Conv2D / L.Dense through this module global
        def __getattr__(self, name: str) -> Any:
            attr = getattr(layers, name)
            if name not in ("Conv2D", "Dense"):
                return attr

            def make(*args: Any, **kwargs: Any) -> Any:
                created.append(attr(*args, **kwargs))
                return created[-1]

            return make

    official.model.L = RecordingLayers()
    tf.keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow: the same initial weights every run
    networks, order = {}, {}
    builders = {  # train.py's order and arguments; upsample_first is its `is_object` (128-px objects)
        "generator": lambda: official.model.make_generator(LATENT, channels=CHANNELS, upsample_first=size == 128),
        "encoder": lambda: official.model.make_encoder(size, LATENT, channels=CHANNELS),
        "critic": lambda: official.model.make_discriminator(size, LATENT, channels=CHANNELS),
    }
    for name, build in builders.items():
        created.clear()
        networks[name] = build()
        order[name] = list(created)
    official.model.L = layers
    return networks, order


def _ordered_weights(order: dict[str, list], value: Any = None) -> dict[str, np.ndarray]:
    value = value or (lambda weight: weight.numpy())
    return {
        f"{name}/{index}": value(weight)
        for name, layers in order.items()
        for index, weight in enumerate(w for layer in layers for w in layer.weights)
    }


def _adam_pair(lr: float) -> tuple[Any, Any]:
    import tensorflow as tf  # noqa: PLC0415

    generator = tf.keras.optimizers.Adam(lr, beta_1=ADAM["generator"][0], beta_2=ADAM["generator"][1])
    critic = tf.keras.optimizers.Adam(lr, beta_1=ADAM["critic"][0], beta_2=ADAM["critic"][1])
    return generator, critic


def _official_step(official: types.SimpleNamespace, images: Any, nets: dict[str, Any], optimizers: tuple[Any, Any],
                   d_train: bool, ge_train: bool, alpha: float) -> dict[str, Any]:
    """One call of the official ``losses.train_step`` with ``train.py``'s arguments; its losses."""
    generator_optimizer, critic_optimizer = optimizers
    losses, _ = official.losses.train_step(
        images, nets["generator"], nets["encoder"], nets["critic"], generator_optimizer, critic_optimizer,
        d_train, ge_train, alpha=alpha, gp_weight=GP_WEIGHT,
    )  # fmt: skip
    return losses


def _official_check(
    official: types.SimpleNamespace, data: dict[str, np.ndarray], config: dict
) -> dict[str, np.ndarray]:
    import tensorflow as tf  # noqa: PLC0415

    tf.config.run_functions_eagerly(True)  # so the patched random draws below apply at every call
    backend = official.losses.K
    images, prior, eps = (tf.constant(data[k]) for k in ("images", "prior", "eps"))
    size = images.shape[1]
    nets, order = _build_official(official, size, config["seed"])
    generator, encoder, critic = nets["generator"], nets["encoder"], nets["critic"]
    out = {f"initial/{k}": v for k, v in _ordered_weights(order).items()}
    features = official.score.get_discriminator_features_model(critic)  # layers[-65]
    encoded = encoder(images, training=False)
    reconstructed = generator(encoded, training=False)
    generated = generator(prior, training=False)
    forward = {
        "E(x)": encoded,
        "G(z)": generated,
        "G(E(x))": reconstructed,
        "D(x, E(x))": critic([images, encoded], training=False)[:, 0],
        "D(G(z), z)": critic([generated, prior], training=False)[:, 0],
        "f_D(x, E(x))": features([images, encoded], training=False),
        "f_D(G(E(x)), E(x))": features([reconstructed, encoded], training=False),
        "A(x)": official.score.anomaly_score(generator, encoder, features, images, size, (0.1,))[0],
    }
    if "texture_images" in data:  # score.py's texture protocol: every size-px tile of a larger image, the maximum
        textures = tf.constant(data["texture_images"])
        forward["A(x), max over tiles"] = official.score.anomaly_score(
            generator, encoder, features, textures, size, (0.1,)
        )[0]
    out.update({f"forward/{k}": np.asarray(v) for k, v in forward.items()})
    initial = {name: net.get_weights() for name, net in nets.items()}
    random_normal, random_uniform = backend.random_normal, backend.random_uniform
    backend.random_normal = lambda *args, **kwargs: prior
    backend.random_uniform = lambda *args, **kwargs: eps
    try:
        for alpha in config["alphas"]:
            for step, (d_train, ge_train) in STEPS.items():
                for name, net in nets.items():
                    net.set_weights(initial[name])
                optimizers = _adam_pair(config["lr"])
                ema = tf.train.ExponentialMovingAverage(decay=config["ema_decay"])
                averaged = generator.variables + encoder.variables
                ema.apply(averaged)  # the average starts from the current weights (train.py's first apply)
                losses = _official_step(official, images, nets, optimizers, d_train, ge_train, alpha)
                ema.apply(averaged)
                key = f"{step}/{alpha:g}"
                out.update({f"{key}/loss/{k}": np.asarray(v) for k, v in losses.items()})
                out.update({f"{key}/weights/{k}": v for k, v in _ordered_weights(order).items()})
                if step == "generator":
                    ge_order = {k: order[k] for k in ("encoder", "generator")}
                    out.update(
                        {
                            f"{key}/average/{k}": v
                            for k, v in _ordered_weights(ge_order, lambda w, ema=ema: ema.average(w).numpy()).items()
                        }
                    )
        # Several batches in a row (two critic/E-G cycles), the official train_step called with our schedule.
        for name, net in nets.items():
            net.set_weights(initial[name])
        optimizers = _adam_pair(config["lr"])
        cycle = config["critic_steps"] + 1
        for index in range(len(data["run_images"])):
            backend.random_normal = lambda *args, index=index, **kwargs: tf.constant(data["run_prior"][index])
            backend.random_uniform = lambda *args, index=index, **kwargs: tf.constant(data["run_eps"][index])
            ge_train = index % cycle == cycle - 1
            batch = tf.constant(data["run_images"][index])
            losses = _official_step(official, batch, nets, optimizers, not ge_train, ge_train, config["alphas"][-1])
            loss = "generator_encoder_total_loss" if ge_train else "discriminator_total_loss"
            out[f"run/loss/{index}"] = np.asarray(losses[loss])
        out.update({f"run/weights/{k}": v for k, v in _ordered_weights(order).items()})
    finally:
        backend.random_normal, backend.random_uniform = random_normal, random_uniform
    return out


def _official_curves(
    official: types.SimpleNamespace, data: dict[str, np.ndarray], config: dict
) -> dict[str, np.ndarray]:
    import tensorflow as tf  # noqa: PLC0415

    size = data["train"].shape[1]
    nets, order = _build_official(official, size, config["seed"])
    generator, encoder, critic = nets["generator"], nets["encoder"], nets["critic"]
    out = {f"initial/{k}": v for k, v in _ordered_weights(order).items()}
    features = official.score.get_discriminator_features_model(critic)
    optimizers = _adam_pair(config["lr"])
    generator_eval, encoder_eval = generator, encoder
    decay = config["ema_decay"]
    if decay > 0:  # train.py: the average scores, copied into clones every 100 steps
        ema = tf.train.ExponentialMovingAverage(decay=decay)
        generator_eval, encoder_eval = tf.keras.models.clone_model(generator), tf.keras.models.clone_model(encoder)
    d_iter, scores, errors, seconds, elapsed = config["critic_steps"], [], [], 0.0, []
    test = data["test"]
    for step, batch in enumerate(data["order"], start=1):
        if step == 1:  # train.py: both sides on the first step (for tf.function tracing)
            d_train = ge_train = True
        else:
            d_train = step % (d_iter + 1) != 0
            ge_train = not d_train
        start = time.perf_counter()
        images = tf.constant(data["train"][batch])
        _official_step(official, images, nets, optimizers, d_train, ge_train, config["alpha"])
        if decay > 0 and step % 10 == 0:
            variables = generator.variables + encoder.variables
            ema.apply(variables)
        if decay > 0 and step % 100 == 0:
            for v_eval, v in zip(generator_eval.variables + encoder_eval.variables, variables, strict=True):
                v_eval.assign(ema.average(v))
        seconds += time.perf_counter() - start
        if step % config["eval_every"] == 0:
            step_scores, step_errors = [], []
            for first in range(0, len(test), 32):
                images = tf.constant(test[first : first + 32])
                step_scores.append(
                    official.score.anomaly_score(generator_eval, encoder_eval, features, images, size, (0.1,))[
                        0
                    ].numpy()
                )
                reconstructed = generator_eval(encoder_eval(images, training=False), training=False)
                step_errors.append(np.abs(images.numpy() - reconstructed.numpy()).mean(axis=(1, 2, 3)))
            elapsed.append(seconds)
            scores.append(np.concatenate(step_scores))
            errors.append(np.concatenate(step_errors))
            print(f"official seed {config['seed']} batch {step}: {seconds:.0f} s", flush=True)
    out.update({"scores": np.stack(scores), "errors": np.stack(errors), "train_seconds": np.asarray(elapsed)})
    return out


def official_worker(mode: str, request: Path, response: Path) -> None:
    """Entry point in the TensorFlow Python: read the request, run the official code, write the response."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with np.load(request) as loaded:
        data = dict(loaded)
    config = json.loads(str(data.pop("config")))
    import tensorflow as tf  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    official = _import_official(config["official"])
    out = (_official_check if mode == "check" else _official_curves)(official, data, config)
    np.savez(response, **out)


# ----------------------------------------------------------------------------------------------------------------
# Our side: runs in this package's Python.


def run_official(
    args: argparse.Namespace, mode: str, data: dict[str, np.ndarray], config: dict
) -> dict[str, np.ndarray]:
    """Run the official side in ``--tf-python`` and return its arrays."""
    config = {**config, "official": str(Path(args.official).resolve()), "threads": args.threads}
    with tempfile.TemporaryDirectory() as folder:
        request, response = Path(folder) / "request.npz", Path(folder) / "response.npz"
        np.savez(request, config=json.dumps(config), **data)
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [args.tf_python, str(Path(__file__).resolve()), "--worker", mode, str(request), str(response)]
        result = subprocess.run(command, env=env, check=False)  # noqa: S603
        if result.returncode != 0:
            msg = (
                f"The official side failed (exit {result.returncode}); is {args.tf_python} a Python with "
                "tensorflow-cpu==2.21.0 and tf-keras==2.21.0 (bash scripts/setup_reference.sh), and "
                f"{args.official} a checkout of fabiocarrara/cbigan-ad?"
            )
            raise SystemExit(msg)
        with np.load(response) as loaded:
            return dict(loaded)


def load_images(paths: list[Path], size: int) -> np.ndarray:
    """Images as float32 NHWC in [-1, 1], resized as our pre-processor does (bilinear, no antialias)."""
    from anomalib_cbigan.data.in_memory import decode_images  # noqa: PLC0415

    images = decode_images(paths, (size, size)).float() / 127.5 - 1
    return np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())


def official_weights(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, list[np.ndarray]]:
    """``{network: [arrays in creation order]}`` from the worker's ``prefix/network/index`` keys."""
    weights: dict[str, list[np.ndarray]] = {}
    for name in NETWORKS:
        keys = sorted((k for k in arrays if k.startswith(f"{prefix}/{name}/")), key=lambda k: int(k.rsplit("/", 1)[1]))
        weights[name] = [arrays[k] for k in keys]
    return weights


def our_model(weights: dict[str, list[np.ndarray]], size: int, **hyper: Any) -> Any:
    """A :class:`~anomalib_cbigan.Cbigan` with the paper's settings (``Cbigan.paper()``: the official code's, not the
    CPU defaults; its weight average only where ``hyper`` asks for it) holding the official weights, stepped outside
    a Trainer."""
    from unittest import mock  # noqa: PLC0415

    from anomalib_cbigan import Cbigan  # noqa: PLC0415
    from anomalib_cbigan.models.cbigan.official_weights import load_official_weights  # noqa: PLC0415

    model = Cbigan.paper(input_size=(size, size), visualizer=False, **{"weight_average_decay": 0.0, **hyper})
    load_official_weights(model.model, weights)
    optimizers = model.configure_optimizers()
    model.optimizers = lambda: optimizers
    model.manual_backward = lambda loss: loss.backward()
    model.log = mock.Mock()
    return model


def nhwc(tensor: Any) -> np.ndarray:
    array = tensor.detach().numpy()
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array  # noqa: PLR2004


def compare(ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict[str, float]:
    """Max absolute difference, relative to the official values' largest magnitude."""
    difference = max(float(np.abs(np.asarray(a, np.float64) - b).max()) for a, b in zip(ours, theirs, strict=True))
    scale = max(float(np.abs(b).max()) for b in theirs)
    return {
        "max_abs_diff": difference,
        "official_max_abs": scale,
        "relative": difference / scale if scale else difference,
    }


def check_weights(
    ours: dict[str, Any], official_after: dict[str, list[np.ndarray]], before: dict[str, list[np.ndarray]], size: int
) -> dict[str, Any]:
    """Our networks ``ours`` (name: module) against the official weights after a step, and the steps themselves.

    The official result and start are loaded into twins of our networks, so all are compared in our layout.
    """
    from anomalib_cbigan.models.cbigan.official_weights import load_official_weights  # noqa: PLC0415
    from anomalib_cbigan.models.cbigan.torch_model import CbiganModel  # noqa: PLC0415

    twin, start = CbiganModel((size, size)), CbiganModel((size, size))
    load_official_weights(twin, official_after)
    load_official_weights(start, before)
    now, theirs, first = [], [], []
    for name, module in ours.items():
        for a, b, s in zip(
            module.parameters(), getattr(twin, name).parameters(), getattr(start, name).parameters(), strict=True
        ):
            now.append(a.detach().numpy())
            theirs.append(b.detach().numpy())
            first.append(s.detach().numpy())
    ours_step = np.concatenate([(a - s).ravel() for a, s in zip(now, first, strict=True)])
    theirs_step = np.concatenate([(b - s).ravel() for b, s in zip(theirs, first, strict=True)])
    scale = max(float(np.abs(b).max()) for b in theirs)
    beyond = sum(int((np.abs(a - b) > 1e-5 * scale).sum()) for a, b in zip(now, theirs, strict=True))
    return {
        **compare(now, theirs),
        "weights_beyond_1e-5": beyond,
        "step_relative_l2": float(np.linalg.norm(ours_step - theirs_step) / np.linalg.norm(theirs_step)),
        "step_sign_differs": f"{int((np.sign(ours_step) != np.sign(theirs_step)).sum())} of {ours_step.size:,}",
    }


def our_step(
    initial: dict[str, list[np.ndarray]], step: str, batch: tuple[Any, Any, Any], alpha: float, lr: float, epsilon: str
) -> tuple[Any, float]:
    """Our ``training_step`` on ``batch = (x, z, eps)`` from the official weights: a critic or an E/G step."""
    from unittest import mock  # noqa: PLC0415

    x, z, eps = batch
    model = our_model(initial, x.shape[-1], alpha=alpha, lr=lr, weight_average_decay=0.999)
    if epsilon == "official":  # TensorFlow's epsilon, at step 1, in PyTorch's formula
        for optimizer, betas in zip(model.optimizers(), ADAM.values(), strict=True):
            optimizer.param_groups[0]["eps"] = 1e-7 / (1 - betas[1]) ** 0.5
    model.batches_seen.fill_(0 if step == "critic" else model.critic_steps)
    model.model.update_weight_average(0.999)  # train.py's first apply: the average starts from these weights
    with mock.patch("torch.randn", lambda *a, **k: z.clone()), mock.patch("torch.rand", lambda *a, **k: eps.clone()):
        loss = model.training_step(types.SimpleNamespace(image=x.clone()), 0)["loss"]
    model.model.update_weight_average(0.999)
    return model, float(loss)


def our_run(
    initial: dict[str, list[np.ndarray]],
    official: dict[str, np.ndarray],
    run: tuple[np.ndarray, ...],
    alpha: float,
    lr: float,
    size: int,
) -> tuple[str, str, dict[str, Any]]:
    """Our ``training_step`` on the official run's batches; Adam's epsilon switched to TensorFlow's at every step."""
    from unittest import mock  # noqa: PLC0415

    import torch  # noqa: PLC0415

    model = our_model(initial, size, alpha=alpha, lr=lr, critic_steps=CRITIC_STEPS)
    losses = []
    for images, prior, eps in zip(*(torch.from_numpy(array) for array in run), strict=True):
        for optimizer, betas in zip(model.optimizers(), ADAM.values(), strict=True):
            state = next(iter(optimizer.state.values()), {})
            count = int(state["step"]) + 1 if "step" in state else 1
            optimizer.param_groups[0]["eps"] = 1e-7 / (1 - betas[1] ** count) ** 0.5
        with (
            mock.patch("torch.randn", lambda *a, prior=prior, **k: prior.clone()),
            mock.patch("torch.rand", lambda *a, eps=eps, **k: eps.clone()),
        ):
            losses.append(
                float(
                    model.training_step(types.SimpleNamespace(image=images.permute(0, 3, 1, 2).contiguous()), 0)["loss"]
                )
            )
    theirs = np.array([official[f"run/loss/{i}"] for i in range(len(losses))], np.float32)
    loss_gap = float(np.max(np.abs(np.array(losses, np.float32) - theirs) / np.abs(theirs)))
    networks = {"encoder": model.model.encoder, "generator": model.model.generator, "critic": model.model.critic}
    result = check_weights(networks, official_weights(official, "run/weights"), initial, size)
    what = f"E, G, D after {len(losses)} batches (2 cycles); largest loss gap {loss_gap:.1e} relative"
    return what, "Adam eps switched to official's at every step", result


def run_check(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One batch, every forward output, loss and one-step weight update compared."""

    import torch  # noqa: PLC0415

    from anomalib_cbigan.models.cbigan.loss import consistency_loss  # noqa: PLC0415

    size, batch = args.image_size, args.batch_size
    # A run of batches: two cycles of 5 critic batches and one E/G batch, each with its own images, z and eps;
    # the single-batch checks use the first batch's images.
    steps = 2 * (CRITIC_STEPS + 1)
    paths = sorted((args.data_root / "bottle" / "train" / "good").glob("*.png"))
    run_images = np.stack([load_images(paths[i * batch : (i + 1) * batch], size) for i in range(steps)])
    images = run_images[0]
    generator = np.random.default_rng(args.seeds[0])
    prior = generator.standard_normal((batch, LATENT)).astype(np.float32)
    eps = generator.uniform(size=(batch, 1)).astype(np.float32)
    run_prior = generator.standard_normal((steps, batch, LATENT)).astype(np.float32)
    run_eps = generator.uniform(size=(steps, batch, 1)).astype(np.float32)
    config = {
        "seed": args.seeds[0],
        "alphas": args.alphas,
        "lr": args.lr,
        "ema_decay": 0.999,
        "critic_steps": CRITIC_STEPS,
    }
    arrays = {
        "images": images,
        "prior": prior,
        "eps": eps,
        "run_images": run_images,
        "run_prior": run_prior,
        "run_eps": run_eps,
    }
    texture_size = 512
    grid = args.data_root / "grid"  # 512-px textures: at --image-size 64 the check scores them tile by tile too
    if size < texture_size and grid.is_dir():  # two good and two defective grid test images, whole
        texture_paths = sorted((grid / "test" / "good").glob("*.png"))[:2] + sorted(
            (grid / "test" / "broken").glob("*.png")
        )[:2]
        arrays["texture_images"] = load_images(texture_paths, texture_size)
    official = run_official(args, "check", arrays, config)
    initial = official_weights(official, "initial")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    z, e = torch.from_numpy(prior), torch.from_numpy(eps)
    rows: list[dict[str, Any]] = []

    def row(what: str, setting: str, result: dict[str, float], alpha: float | None = None) -> None:
        blank = (
            "max_abs_diff",
            "official_max_abs",
            "relative",
            "weights_beyond_1e-5",
            "step_relative_l2",
            "step_sign_differs",
        )
        result = {**dict.fromkeys(blank, ""), **result}
        shown = {k: f"{v:.1e}" if isinstance(v, float) else v for k, v in result.items()}
        rows.append({"what": what, "alpha": "" if alpha is None else f"{alpha:g}", "ours": setting, **shown})

    model = our_model(initial, size, channels_last=False)
    net = model.model.eval()
    with torch.no_grad():
        encoded = net.encoder(x)
        reconstructed = net.generator(encoded)
        generated = net.generator(z)
        real, fake = net.critic(x, encoded), net.critic(generated, z)
        ours_forward = {
            "E(x)": encoded,
            "G(z)": generated,
            "G(E(x))": reconstructed,
            "D(x, E(x))": real.score,
            "D(G(z), z)": fake.score,
            "f_D(x, E(x))": real.features,
            "f_D(G(E(x)), E(x))": net.critic(reconstructed, encoded).features,
            "A(x)": net(x).pred_score,
        }
    if "texture_images" in arrays:
        tiled = our_model(initial, size, channels_last=False, tile_images=True).model.eval()
        with torch.no_grad():
            textures = torch.from_numpy(arrays["texture_images"]).permute(0, 3, 1, 2).contiguous()
            ours_forward["A(x), max over tiles"] = tiled(textures).pred_score
    for name, value in ours_forward.items():
        theirs = official[f"forward/{name}"]
        if name.startswith("f_D"):  # ours is the stem convolution's output flattened (C, H, W)
            value = value.view(batch, -1, size, size)
        row(name, "default", compare([nhwc(value)], [theirs]))

    for alpha in args.alphas:
        key = f"{alpha:g}"
        for epsilon in ("ours", "official"):
            (critic, critic_loss), (generator, generator_loss) = (
                our_step(initial, step, (x, z, e), alpha, args.lr, epsilon) for step in ("critic", "generator")
            )
            adam = "Adam eps 1e-7 (ours)" if epsilon == "ours" else "Adam eps switched to official's step 1"
            d_only, eg_only = (
                {"critic": critic.model.critic},
                {"encoder": generator.model.encoder, "generator": generator.model.generator},
            )
            row(
                "D after one critic step",
                adam,
                check_weights(d_only, official_weights(official, f"critic/{key}/weights"), initial, size),
                alpha,
            )
            row(
                "E, G after one E/G step",
                adam,
                check_weights(eg_only, official_weights(official, f"generator/{key}/weights"), initial, size),
                alpha,
            )
            # The official first step updates both sides from the same weights: our critic step and our E/G step.
            both, first = official_weights(official, f"both/{key}/weights"), adam + ", first step switched to official"
            row("first step: D", first, check_weights(d_only, both, initial, size), alpha)
            row("first step: E, G", first, check_weights(eg_only, both, initial, size), alpha)
        averages = official_weights(
            {k.replace("/average/", "/weights/"): v for k, v in official.items()}, f"generator/{key}/weights"
        )
        row(
            "weight average of E, G after the E/G step",
            adam,
            check_weights(dict(generator.model.average), averages, initial, size),
            alpha,
        )
        logged = {c.args[0]: float(c.args[1]) for c in critic.log.call_args_list}
        row(
            "critic loss L_D + 10 GP",
            "default",
            compare([np.float32(critic_loss)], [official[f"critic/{key}/loss/discriminator_total_loss"]]),
            alpha,
        )
        row(
            "gradient penalty GP",
            "default",
            compare([np.float32(logged["gradient_penalty"])], [official[f"critic/{key}/loss/gradient_penalty_loss"]]),
            alpha,
        )
        row(
            "E/G loss (1-a) L_EG + a L_C",
            "default",
            compare([np.float32(generator_loss)], [official[f"generator/{key}/loss/generator_encoder_total_loss"]]),
            alpha,
        )
    row(*our_run(initial, official, (run_images, run_prior, run_eps), args.alphas[-1], args.lr, size), args.alphas[-1])
    with torch.no_grad():
        cycle = (x, net.generator(net.encoder(x)), z, net.encoder(net.generator(z)))
    theirs = (
        official[f"generator/{key}/loss/images_reconstruction_loss"]
        + official[f"generator/{key}/loss/latent_reconstruction_loss"]
    )
    row("consistency L_C", "default", compare([consistency_loss(*cycle).numpy()], [theirs]))
    return rows


def run_curves(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Both implementations trained on the same batches from the same weights; AUROC and L1 every few batches."""
    import torch  # noqa: PLC0415
    from anomalib_cbigan.metrics import auroc  # noqa: PLC0415

    size = args.image_size
    bottle = args.data_root / "bottle"
    train = load_images(sorted((bottle / "train" / "good").glob("*.png")), size)
    test_paths = sorted((bottle / "test").glob("*/*.png"))
    test = load_images(test_paths, size)
    labels = np.array([path.parent.name != "good" for path in test_paths])
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        order = np.concatenate(
            [rng.permutation(len(train)) for _ in range(args.batches * args.batch_size // len(train) + 1)]
        )
        order = order[: args.batches * args.batch_size].reshape(args.batches, args.batch_size)
        config = {
            "seed": seed,
            "lr": args.lr,
            "alpha": args.alphas[0],
            "critic_steps": args.critic_steps,
            "ema_decay": args.ema_decay,
            "eval_every": args.eval_every,
        }
        official = run_official(args, "curves", {"train": train, "test": test, "order": order}, config)
        torch.manual_seed(seed)
        model = our_model(
            official_weights(official, "initial"),
            size,
            alpha=args.alphas[0],
            lr=args.lr,
            critic_steps=args.critic_steps,
            weight_average_decay=args.ema_decay,
        )
        x_train = torch.from_numpy(train).permute(0, 3, 1, 2).contiguous()
        x_test = torch.from_numpy(test).permute(0, 3, 1, 2).contiguous()
        seconds, evaluation = 0.0, 0
        for step, batch in enumerate(order, start=1):
            model.train()
            start = time.perf_counter()
            model.training_step(types.SimpleNamespace(image=x_train[torch.from_numpy(batch)]), 0)
            seconds += time.perf_counter() - start
            if step % args.eval_every:
                continue
            model.eval()
            with torch.no_grad():
                scores = torch.cat(
                    [model.model(x_test[i : i + 32]).pred_score for i in range(0, len(x_test), 32)]
                ).numpy()
                errors = torch.cat(
                    [
                        (x_test[i : i + 32] - model.model.reconstruct(x_test[i : i + 32])[1]).abs().mean((1, 2, 3))
                        for i in range(0, len(x_test), 32)
                    ]
                ).numpy()
            for side, side_scores, side_errors, side_seconds in (
                ("official", official["scores"][evaluation], official["errors"][evaluation], None),
                ("ours", scores, errors, seconds),
            ):
                rows.append(
                    {
                        "implementation": side,
                        "seed": seed,
                        "batches": step,
                        "image_AUROC": round(auroc(labels, side_scores), 4),
                        "good_test_L1": round(float(side_errors[~labels].mean()), 5),
                        "train_s": round(
                            float(official["train_seconds"][evaluation]) if side_seconds is None else side_seconds, 1
                        ),
                    }
                )
            print(rows[-2], rows[-1], flush=True)
            evaluation += 1
    return rows


def plot_curves(rows: list[dict[str, Any]], output: Path) -> None:
    """Image AUROC and good-image L1 against batches, one line per implementation and seed."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for side, colour in (("official", "tab:blue"), ("ours", "tab:orange")):
        for seed in sorted({r["seed"] for r in rows}):
            points = [r for r in rows if r["implementation"] == side and r["seed"] == seed]
            label = f"{side} (TensorFlow)" if side == "official" else "ours (PyTorch)"
            for axis, key in zip(axes, ("image_AUROC", "good_test_L1"), strict=True):
                axis.plot(
                    [p["batches"] for p in points],
                    [p[key] for p in points],
                    color=colour,
                    alpha=0.8,
                    label=label if seed == min(r["seed"] for r in rows) else None,
                )
    axes[0].set(xlabel="training batches", ylabel="image AUROC of A(x), bottle test", title="AUROC")
    axes[1].set(xlabel="training batches", ylabel="mean |x - G(E(x))|, good test images", title="reconstruction L1")
    for axis in axes:
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", help="checkout of github.com/fabiocarrara/cbigan-ad")
    parser.add_argument(
        "--tf-python",
        default=os.environ.get("CBIGAN_REFERENCE_PYTHON", "python3"),
        help="Python with tensorflow-cpu==2.21.0 and tf-keras==2.21.0 (scripts/setup_reference.sh)",
    )
    parser.add_argument("--mode", choices=("check", "curves"), default="check")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=[0.0, 1e-5, 0.5],
        help="check: each (0 is EGBAD; the run of batches uses the last); curves: the first",
    )
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--critic-steps", type=int, default=5, help="curves: critic batches per E/G batch")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--batches", type=int, default=1200, help="curves: training batches per run")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument(
        "--ema-decay", type=float, default=0.0, help="curves: weight average of E and G (official 0.999)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--data-root", type=Path, default=None, help="MVTec AD (bottle, grid); default: $MVTEC_ROOT")
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "REQUEST", "RESPONSE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        official_worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
        return []
    if not args.official or not (Path(args.official) / "model.py").is_file():
        parser.error("--official must be a checkout of github.com/fabiocarrara/cbigan-ad (with model.py)")
    import torch  # noqa: PLC0415

    from anomalib_cbigan.reports import write_tables  # noqa: PLC0415
    from anomalib_cbigan_bench.data_roots import data_root  # noqa: PLC0415  # not in the TensorFlow worker's venv

    args.data_root = args.data_root or data_root("MVTEC_ROOT")
    torch.set_num_threads(args.threads)
    output = args.output or RESULTS / f"reference_parity_{args.mode}"
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = run_check(args) if args.mode == "check" else run_curves(args)
    write_tables(rows, output)
    if args.mode == "curves":
        plot_curves(rows, output.with_suffix(".png"))
    print(f"wrote {output.with_suffix('.md')} and {output.with_suffix('.csv')}")
    return rows


if __name__ == "__main__":
    main()
