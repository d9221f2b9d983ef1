"""Image decoding, augmentation and normalisation, as `tf` ops for `tf.data`.

The augmentations of ELR-SPEC §3: zero-pad and random-crop plus horizontal
flip for small images (`pad_crop_flip`, on whole batches), resize plus
random crop and flip for large ones (`load_image`, `random_crop_flip`),
central crops at evaluation (`center_crop`), and per-channel normalisation.
"""

import tensorflow as tf

from elr_tf.data.example_set import ExampleSet

# Augmentation kinds of `NoisyData.augment`: `cifar` and `fashion_mnist`
# pad, crop and flip in-memory images (`pad_crop_flip`); `large` resizes,
# crops and flips image files (`load_image`, `random_crop_flip`).
AUGMENT_KINDS = ("cifar", "fashion_mnist", "large")

# Zero padding before the random crop of the small-image augmentations.
CROP_PADDING = 4

# First bytes of the image formats `tf.io.decode_image` reads.
_IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def pad_crop_flip(images, random, padding):
    """Zero-pads, random-crops back and random-flips a uint8 batch.

    The crop offsets and flip of example k come from `random[k]`:
    `dy = r % s`, `dx = (r // s) % s`, flip when `(r // s**2) % 2 == 1`,
    with `s = 2 * padding + 1`. Batched gathers are used instead of a
    per-example map because they are much cheaper for small images.

    Args:
        images: `[B, H, W, C]` tensor.
        random: int64 `[B]`, non-negative.
        padding: zero padding on each side.

    Returns:
        `[B, H, W, C]` tensor of the same dtype.
    """
    images = tf.convert_to_tensor(images)
    random = tf.cast(random, tf.int64)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    span = 2 * padding + 1
    dy = tf.cast(random % span, tf.int32)
    dx = tf.cast((random // span) % span, tf.int32)
    flip = (random // (span * span)) % 2 == 1
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = dy[:, None] + tf.range(height)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cols = dx[:, None] + tf.range(width)[None, :]
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    flipped = tf.reverse(cropped, axis=[2])
    return tf.where(flip[:, None, None, None], flipped, cropped)


def normalize(images, mean, std):
    """uint8-range images -> float32 `(x / 255 - mean) / std` per channel."""
    images = tf.cast(images, tf.float32) / 255.0
    return (images - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def load_image(path, resize_size):
    """Reads an image file; returns float32 RGB with shorter side `resize_size`."""
    image = decode_image_file(path)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_size / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), resize_size)
    return tf.image.resize(image, new_size, antialias=True)


def decode_image_file(path):
    """Reads and decodes an image file to uint8 RGB `[H, W, 3]`.

    Files that are not JPEG/PNG/GIF/BMP (empty, HTML error pages, ...) fail
    with an InvalidArgumentError naming the file; missing files fail in
    `tf.io.read_file`, whose error names the file. A valid header followed
    by corrupt data fails in the decoder, whose error cannot name the file:
    `elr_tf.data.find_unreadable_images` lists such files.
    """
    contents = tf.io.read_file(path)
    is_image = tf.reduce_any([tf.strings.substr(contents, 0, len(m)) == m for m in _IMAGE_MAGICS])
    check = tf.debugging.Assert(
        is_image,
        ["Corrupt or unreadable image file (not JPEG/PNG/GIF/BMP):", path],
    )
    with tf.control_dependencies([check]):
        contents = tf.identity(contents)
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def random_crop_flip(image, crop_hw, seed):
    """Random `crop_hw` crop and horizontal flip of `[H, W, C]`, stateless."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    channels = tf.shape(image)[-1]
    image = tf.image.stateless_random_crop(
        image, tf.stack([crop_hw[0], crop_hw[1], channels]), seeds[0]
    )
    return tf.image.stateless_random_flip_left_right(image, seeds[1])


def center_crop(image, crop_hw):
    """Central `crop_hw` crop of `[H, W, C]` (H, W at least the crop)."""
    return tf.image.resize_with_crop_or_pad(image, crop_hw[0], crop_hw[1])


def find_unreadable_images(example_set):
    """Lists the files of a file-backed set that cannot be read or decoded.

    Decoding errors inside a running `tf.data` pipeline do not say which file
    failed when the file has a valid image header but corrupt data; this scan
    names them. It decodes every image once.

    Example:

    ```python
    find_unreadable_images(data.train)  # ["/data/c1m/images/3/x.jpg"]
    ```

    Args:
        example_set: a file-backed `ExampleSet`.

    Returns:
        The unreadable paths, in set order (empty when all are fine).
    """
    if not isinstance(example_set, ExampleSet) or not example_set.file_backed:
        raise ValueError(
            "`example_set` must be a file-backed ExampleSet. Received: "
            f"{type(example_set).__name__}"
        )
    return unreadable_paths(example_set.paths)


def unreadable_paths(paths):
    """The image files among `paths` that cannot be read or decoded, in order.

    Decodes every file once, in parallel; see `find_unreadable_images`.

    Args:
        paths: image file paths.

    Returns:
        The paths that fail to read or decode, in the order given.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return []
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    ds = ds.map(
        lambda p: (p, tf.shape(decode_image_file(p))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    readable = {p.decode() for p, _ in ds.ignore_errors().as_numpy_iterator()}
    return [p for p in paths if p not in readable]
