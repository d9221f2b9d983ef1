"""Tests for elr_tf.models.backbones: shapes, sizes, dtypes, preprocessing, errors, round trips."""

import copy
import os
import urllib.error

import keras
import numpy as np
import pytest

from elr_tf.models import backbones

# Presets and an input shape small enough to build and call quickly on CPU.
# Every preset can be built offline with random weights.
_OFFLINE_PRESETS = {
    "tiny_cnn": ((28, 28, 1), {}),
    "small_cnn": ((28, 28, 1), {}),
    "mini_cnn": ((28, 28, 1), {}),
    "plain_cnn": ((28, 28, 1), {}),
    "tiny_resnet": ((32, 32, 3), {}),
    "cifar_resnet18": ((32, 32, 3), {}),
    "cifar_resnet34": ((32, 32, 3), {}),
    "preact_resnet18": ((32, 32, 3), {}),
    "tiny_resnet9": ((32, 32, 3), {}),
    "resnet9_w32": ((32, 32, 3), {}),
    "resnet9": ((32, 32, 3), {}),
    "resnet50": ((64, 64, 3), {"weights": None}),
    # 75x75 is the smallest input InceptionResNetV2 accepts.
    "inception_resnet_v2": ((75, 75, 3), {"weights": None}),
}


@pytest.fixture
def mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_every_preset_is_covered():
    assert set(_OFFLINE_PRESETS) == set(backbones.PRESETS)


@pytest.mark.parametrize("arch", sorted(_OFFLINE_PRESETS))
def test_preset_builds_with_logits_of_num_classes(arch, rng):
    input_shape, overrides = _OFFLINE_PRESETS[arch]
    model = backbones.build_backbone(arch, 7, input_shape, **overrides)
    images = rng.random((2, *input_shape), dtype=np.float32)
    logits = model(images, training=False)
    assert tuple(logits.shape) == (2, 7)
    assert logits.dtype == "float32"
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense)
    assert head.get_config()["activation"] == "linear"  # logits, no softmax


def test_preset_default_input_shapes(rng):
    # The CIFAR presets default to 32x32x3 and the CNNs to 28x28x1.
    assert backbones.build_backbone("tiny_resnet", 3).input_shape == (
        None,
        32,
        32,
        3,
    )
    assert backbones.build_backbone("tiny_cnn", 3).input_shape == (
        None,
        28,
        28,
        1,
    )


def test_cifar_resnet34_parameter_count_and_resolution(rng):
    model = backbones.build_backbone("cifar_resnet34", 10)
    # The reference PyTorch ResNet-34 has 21,282,122 parameters; Keras also
    # counts the 2 * 8,512 batch-norm moving statistics.
    assert model.name == "cifar_resnet34"
    assert 21.2e6 < model.count_params() < 21.4e6
    # 3x3 stride-1 stem and no max-pool: 32 -> 32 -> 16 -> 8 -> 4.
    assert model.get_layer("stage1_block3_out").output.shape[1:3] == (32, 32)
    assert model.get_layer("avg_pool").input.shape[1:] == (4, 4, 512)
    logits = model(rng.random((1, 32, 32, 3), dtype=np.float32))
    assert tuple(logits.shape) == (1, 10)


def test_preact_resnet18_parameter_count_and_blocks():
    model = backbones.build_backbone("preact_resnet18", 10)
    # The reference PreActResNet18 has 11,171,146 parameters.
    assert 11.1e6 < model.count_params() < 11.25e6
    names = {layer.name for layer in model.layers}
    # The projection shortcut is a bare conv in the pre-activation block...
    assert "stage2_block1_proj" in names
    assert "stage2_block1_proj_bn" not in names
    # ...and conv + BN in the post-activation one.
    postact = backbones.build_backbone("cifar_resnet18", 10)
    assert "stage2_block1_proj_bn" in {layer.name for layer in postact.layers}


def test_cifar_resnet_default_names():
    assert backbones.cifar_resnet(10, block_sizes=(2, 2, 2, 2)).name == ("cifar_resnet18")
    assert (
        backbones.cifar_resnet(10, block_sizes=(1, 1), width=4, preact=True).name
        == "preact_resnet6"
    )


def test_logits_float32_under_mixed_precision(mixed_precision, rng):
    for arch in ("tiny_resnet", "tiny_cnn"):
        input_shape, _ = _OFFLINE_PRESETS[arch]
        model = backbones.build_backbone(arch, 4)
        # Convolutions compute in float16; only the head is float32.
        assert model.layers[2].compute_dtype == "float16"
        logits = model(rng.random((2, *input_shape), dtype=np.float32))
        assert logits.dtype == "float32"


def test_weight_decay_matches_sgd_coupled_decay(rng):
    weight_decay = 1e-3
    model = backbones.build_backbone("tiny_resnet", 3, weight_decay=weight_decay)
    model(rng.random((1, 32, 32, 3), dtype=np.float32))
    # Penalty (wd / 2) * sum(w**2) over every trainable weight, so that its
    # gradient is wd * w as in torch.optim.SGD(weight_decay=wd).
    expected = (
        0.5 * weight_decay * sum(float(np.sum(np.square(w))) for w in model.trainable_weights)
    )
    assert len(model.losses) == len(model.trainable_weights)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_no_weight_decay_by_default():
    assert backbones.build_backbone("tiny_cnn", 3).losses == []


def testwith_regularizer_keeps_weights_and_adds_penalty(rng):
    model = backbones.build_backbone("tiny_cnn", 3)
    images = rng.random((2, 28, 28, 1), dtype=np.float32)
    regularized = backbones.with_regularizer(model, keras.regularizers.L2(1e-4))
    np.testing.assert_allclose(
        regularized(images, training=False),
        model(images, training=False),
        rtol=1e-6,
    )
    assert len(regularized.losses) == len(model.trainable_weights)


def test_resnet50_without_weights_builds_with_weight_decay(rng):
    model = backbones.build_backbone("resnet50", 5, (64, 64, 3), weights=None, weight_decay=1e-3)
    assert model.name == "resnet50"
    assert len(model.losses) == len(model.trainable_weights)
    logits = model(rng.random((1, 64, 64, 3), dtype=np.float32))
    assert tuple(logits.shape) == (1, 5)


def test_resnet50_imagenet_weights_offline_raises_clear_error(monkeypatch):
    weights_file = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    if os.path.exists(os.path.join(keras_home, "models", weights_file)):
        pytest.skip("ImageNet weights are cached, so nothing is downloaded.")

    # Make the download fail the way it does offline even on a machine that
    # is online, so the test never fetches 94 MB. This patches Keras's
    # private module; if Keras moves it, setattr fails and so does the test.
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline)
    with pytest.raises(ConnectionError) as info:
        backbones.build_backbone("resnet50", 5, (64, 64, 3))
    message = str(info.value)
    assert "resnet50" in message
    assert "ImageNet weights" in message
    assert weights_file in message
    assert "models" in message  # where to put the file
    assert "weights=None" in message
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize(
    "arch, overrides",
    [
        ("tiny_cnn", {}),
        ("tiny_resnet", {"weight_decay": 1e-4}),
        ("tiny_resnet", {"preact": True, "name": "tiny_preact"}),
    ],
)
def test_get_config_round_trip(arch, overrides, rng):
    original = backbones.build_backbone(arch, 4, **overrides)
    config = original.get_config()
    # from_config consumes its argument, so hand it a copy.
    restored = keras.Model.from_config(copy.deepcopy(config))
    assert restored.get_config() == config
    restored.set_weights(original.get_weights())
    images = rng.random((2, *original.input_shape[1:]), dtype=np.float32)
    np.testing.assert_allclose(
        restored(images, training=False),
        original(images, training=False),
        rtol=1e-5,
        atol=1e-6,
    )
    assert len(restored.losses) == len(original.losses)
    assert restored.layers[-1].dtype_policy.name == "float32"


def test_unknown_arch_lists_valid_names():
    with pytest.raises(ValueError, match="`arch`.*Received: arch='resnet99'") as info:
        backbones.build_backbone("resnet99", 10)
    for name in backbones.PRESETS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: backbones.cifar_resnet(0), "`num_classes`.*num_classes=0"),
        (lambda: backbones.cifar_resnet(10, width=0), "`width`.*width=0"),
        (
            lambda: backbones.cifar_resnet(10, block_sizes=()),
            r"`block_sizes`.*block_sizes=\(\)",
        ),
        (
            lambda: backbones.cifar_resnet(10, block_sizes=(2, 0)),
            "`block_sizes`",
        ),
        (
            lambda: backbones.cifar_resnet(10, weight_decay=-1.0),
            "`weight_decay`.*weight_decay=-1.0",
        ),
        (
            lambda: backbones.small_cnn(10, input_shape=(28, 28)),
            "`input_shape`.*input_shape=",
        ),
        (lambda: backbones.small_cnn(10, num_blocks=0), "`num_blocks`"),
        (
            lambda: backbones.applications_backbone("vgg16", 10, (64, 64, 3)),
            "`name`.*Received: name='vgg16'",
        ),
    ],
)
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_applications_presets_name_their_preprocessing():
    for arch in ("resnet50", "inception_resnet_v2"):
        assert callable(backbones.PRESETS[arch]["preprocessing"])
    assert backbones.PRESETS["cifar_resnet34"]["preprocessing"] is None


def test_applications_preset_preprocesses_raw_pixels_itself(rng):
    # The pipeline gives such a backbone raw 0-255 pixels: the model must
    # equal the bare network on keras's own preprocessing of them.
    pixels = rng.uniform(0.0, 255.0, (2, 32, 32, 3)).astype("float32")
    model = backbones.build_backbone("resnet50", 5, (32, 32, 3), weights=None)
    assert model.layers[1].name == "preprocessing"
    bare = backbones.applications_backbone("resnet50", 5, (32, 32, 3), weights=None)
    bare.set_weights(model.get_weights())
    by_hand = keras.applications.resnet.preprocess_input(pixels.copy())
    np.testing.assert_allclose(
        model(pixels, training=False), bare(by_hand, training=False), rtol=1e-5, atol=1e-5
    )
    # The preprocessing survives a config round trip (it is saved by name).
    restored = keras.Model.from_config(copy.deepcopy(model.get_config()))
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(
        restored(pixels, training=False), model(pixels, training=False), rtol=1e-6, atol=1e-6
    )


def test_inception_preprocessing_scales_pixels_to_plus_minus_one():
    # keras's inception_resnet_v2 preprocessing: x / 127.5 - 1.
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    model = backbones.small_cnn(
        3,
        input_shape=(1, 1, 3),
        num_blocks=1,
        width=2,
        preprocessing=backbones.PRESETS["inception_resnet_v2"]["preprocessing"],
    )
    preprocessed = keras.Model(model.input, model.get_layer("preprocessing").output)(pixels)
    expected = keras.applications.inception_resnet_v2.preprocess_input(pixels.copy())
    np.testing.assert_allclose(preprocessed, expected, rtol=1e-6)
    np.testing.assert_allclose(preprocessed, [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)


def test_preprocessing_can_be_turned_off():
    model = backbones.build_backbone("resnet50", 5, (32, 32, 3), weights=None, preprocessing=None)
    assert "preprocessing" not in {layer.name for layer in model.layers}


def test_other_application_errors_pass_through_unchanged():
    # Only download failures become ConnectionError; Keras's own argument
    # checks (ImageNet weights need 3 channels) reach the caller as they are.
    with pytest.raises(ValueError, match="3"):
        backbones.applications_backbone("resnet50", 5, (64, 64, 1))


@pytest.mark.parametrize("arch", ["tiny_resnet", "preact_resnet18"])
def test_resnets_train_on_odd_last_batch(arch):
    # Regression: a bias-free strided 1x1 convolution crashed TF 2.21's
    # oneDNN CPU kernel on odd batch sizes; the projection avoids it.
    overrides = {"width": 4} if arch == "preact_resnet18" else {}
    model = backbones.build_backbone(arch, 10, (16, 16, 3), **overrides)
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = np.random.default_rng(0).random((21, 16, 16, 3)).astype("float32")
    model.fit(x, np.arange(21) % 10, batch_size=21, epochs=1, verbose=0)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def test_preact_identity_shortcut_takes_the_pre_activated_input():
    # As in the ELR+ reference: each block adds its residual to relu(bn1(x)),
    # not to x. Every Add's first input must be a ReLU (or its projection).
    model = backbones.cifar_resnet(
        num_classes=3, input_shape=(8, 8, 3), block_sizes=(2, 1), width=4, preact=True
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.Add):
            shortcut = layer._inbound_nodes[0].parent_nodes[0].operation
            assert isinstance(shortcut, (keras.layers.ReLU, keras.layers.Conv2D)), shortcut.name
            if isinstance(shortcut, keras.layers.ReLU):
                assert shortcut.name == layer.name.replace("_add", "_relu1")


# --- initialisation -----------------------------------------------------------


def _fan_in(layer):
    return int(np.prod(layer.kernel.shape[:-1]))


def test_reference_init_draws_every_kernel_and_bias_within_one_over_root_fan_in():
    keras.utils.set_random_seed(0)
    model = backbones.build_backbone("plain_cnn", 10, (28, 28, 1), init="reference")
    checked = 0
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        bound = np.float32(1.0 / np.sqrt(_fan_in(layer)))  # As the draw rounds it.
        kernel = layer.kernel.numpy()
        # Uniform on [-bound, bound]: inside it, reaching near both ends, with
        # standard deviation bound / sqrt(3).
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound
        np.testing.assert_allclose(kernel.std(), bound / np.sqrt(3), rtol=0.1)
        if layer.bias is not None:
            bias = layer.bias.numpy()
            assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0
        checked += 1
    assert checked == 4  # Two convolutions and two dense layers.
    # Hand check of the first layer: a 3x3 conv on one channel has fan-in 9.
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert _fan_in(first) == 9 and np.abs(first.kernel.numpy()).max() <= 1 / 3


def test_reference_init_leaves_batch_norm_at_one_and_zero_and_follows_the_seed():
    keras.utils.set_random_seed(3)
    first = backbones.build_backbone("tiny_resnet", 4, (8, 8, 3), init="reference")
    keras.utils.set_random_seed(3)
    again = backbones.build_backbone("tiny_resnet", 4, (8, 8, 3), init="reference")
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    norms = [layer for layer in first.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms
    for layer in norms:
        np.testing.assert_array_equal(layer.gamma.numpy(), 1.0)
        np.testing.assert_array_equal(layer.beta.numpy(), 0.0)
    # Keras's own start is larger: glorot/he kernels against U(+-1/sqrt(fan_in)).
    keras.utils.set_random_seed(3)
    own = backbones.build_backbone("tiny_resnet", 4, (8, 8, 3), init="keras")
    convs = [(a, b) for a, b in zip(first.layers, own.layers) if isinstance(a, keras.layers.Conv2D)]
    ratios = [b.kernel.numpy().std() / a.kernel.numpy().std() for a, b in convs]
    assert min(ratios) > 1.5


def _keras_scale(layer):
    """The bound (uniform) or stddev (truncated normal) of Keras's own start."""
    fan_in = _fan_in(layer)
    if isinstance(layer, keras.layers.Conv2D):
        return np.sqrt(2.0 / fan_in)  # he-normal: stddev, truncated at 2 / 0.8796 of it.
    return np.sqrt(6.0 / (fan_in + layer.kernel.shape[-1]))  # glorot-uniform: bound.


@pytest.mark.parametrize("init", ["reference", "keras"])
def test_each_start_keeps_its_initialisers_bounds_on_the_tiny_preset(init):
    # Every kernel of tiny_cnn, scaled by its own layer's bound (or stddev),
    # pooled: inside the initialiser's limits and with its spread. Uniform on
    # [-1, 1] has stddev 1/sqrt(3); Keras's truncated he-normal has stddev 1
    # after scaling (its draw is rescaled by 1/0.8796 to make up for the cut).
    keras.utils.set_random_seed(11)
    model = backbones.build_backbone("tiny_cnn", 10, (28, 28, 1), init=init)
    scaled = {"uniform": [], "normal": []}
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            continue
        kernel = layer.kernel.numpy()
        if init == "reference":
            bound = np.float32(1.0 / np.sqrt(_fan_in(layer)))
            assert np.abs(kernel).max() <= bound
            if layer.bias is not None:
                assert np.abs(layer.bias.numpy()).max() <= bound
                assert np.any(layer.bias.numpy() != 0)
            scaled["uniform"].append(kernel.ravel() / bound)
            continue
        scale = _keras_scale(layer)
        if layer.bias is not None:
            np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
        if isinstance(layer, keras.layers.Conv2D):
            assert np.abs(kernel).max() <= 2 * scale / 0.87962566103423978 * (1 + 1e-6)
            scaled["normal"].append(kernel.ravel() / scale)
        else:
            assert np.abs(kernel).max() <= np.float32(scale)
            scaled["uniform"].append(kernel.ravel() / scale)
    uniform = np.concatenate(scaled["uniform"])
    np.testing.assert_allclose(uniform.std(), 1 / np.sqrt(3), rtol=0.1)
    if init == "keras":
        np.testing.assert_allclose(np.concatenate(scaled["normal"]).std(), 1.0, rtol=0.15)


@pytest.mark.parametrize("arch", ["cifar_resnet34", "preact_resnet18", "plain_cnn", "small_cnn"])
def test_the_paper_configs_presets_start_as_the_reference_by_default(arch):
    # Built twice from one seed, the default and init="reference" are the same
    # draw; init="keras" is another (and larger) one.
    shape = (28, 28, 1) if "cnn" in arch else (32, 32, 3)
    built = {}
    for init in (None, "reference", "keras"):
        keras.utils.set_random_seed(5)
        built[init] = backbones.build_backbone(arch, 10, shape, init=init).get_weights()
    for a, b in zip(built[None], built["reference"]):
        np.testing.assert_array_equal(a, b)
    kernels = [(a, b) for a, b in zip(built[None], built["keras"]) if a.ndim >= 2]
    assert all(b.std() > 1.3 * a.std() for a, b in kernels)


def test_reference_init_is_refused_for_a_pretrained_family_and_unknown_inits():
    with pytest.raises(ValueError, match="does not apply to 'resnet50'"):
        backbones.build_backbone("resnet50", 3, (64, 64, 3), init="reference", weights=None)
    with pytest.raises(ValueError, match="`init` must be one of"):
        backbones.build_backbone("tiny_cnn", 3, (8, 8, 1), init="pytorch")


def test_resnet9_scales_the_pooled_features_before_the_logits(rng):
    # The logits are Dense(logit_scale * global-max-pooled features): the
    # features the logits layer reads are 0.125 times the pooled ones.
    model = backbones.build_backbone("tiny_resnet9", 10)
    images = rng.random((3, 32, 32, 3), dtype=np.float32)
    probe = keras.Model(
        model.inputs,
        [model.get_layer("max_pool").output, model.get_layer("logit_scale").output, model.output],
    )
    pooled, scaled, logits = (np.asarray(t) for t in probe(images, training=False))
    np.testing.assert_allclose(scaled, 0.125 * pooled, rtol=1e-6)
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(logits, scaled @ kernel + bias, rtol=1e-5, atol=1e-6)
    # Three stages of 2, 4 and 8 times the stem's width, each pooled once.
    assert model.get_layer("max_pool").input.shape[1:] == (4, 4, 32)
    with pytest.raises(ValueError, match="logit_scale"):
        backbones.build_backbone("tiny_resnet9", 10, logit_scale=0)
