"""Pretrained networks the metrics and the projector need, loaded from local files.

None of them ships with the library; each is read from a file named by a flag
or, failing that, an environment variable:

- Inception-v3 (FID, KID, Inception Score): `classify_image_graph_def.pb`, the frozen
  graph in inception-2015-12-05.tgz (http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz),
  the network of the original FID code (TTUR), of the original Inception Score code
  (OpenAI's improved-gan) and of NVIDIA's metrics. The .tgz itself is accepted too.
  Env STYLEGAN2_INCEPTION. FID and KID use its pool_3 features, the Inception Score
  its class probabilities (`load_inception_probabilities`).
- VGG16 (precision and recall): Keras' ImageNet weights with the classifier,
  `vgg16_weights_tf_dim_ordering_tf_kernels.h5`
  (https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5);
  features are the 4096 fc2 activations. Env STYLEGAN2_VGG16.
- LPIPS (perceptual path length, projector): `net-lin_vgg_v0.1.pb`, LPIPS v0.1
  on VGG16 frozen for TensorFlow (http://rail.eecs.berkeley.edu/models/lpips/net-lin_vgg_v0.1.pb,
  from github.com/alexlee-gk/lpips-tensorflow), the distance NVIDIA's PPL uses.
  Env STYLEGAN2_LPIPS. Images above 256 pixels are box-filtered down first
  (`downsample_for_lpips`), by PPL and by the projector alike.

Feature extractors take uint8 images [N, H, W, C] (C = 1 or 3; grayscale is
repeated to RGB) and return float32 features [N, D].
"""

import dataclasses
import hashlib
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """Where one pretrained network comes from: its flag, env variable, file name and URL."""

    name: str
    flag: str
    env: str
    file_name: str
    url: str


INCEPTION = WeightsFile(
    "Inception-v3", "inception", "STYLEGAN2_INCEPTION", "classify_image_graph_def.pb",
    "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz")
VGG16 = WeightsFile(
    "VGG16", "vgg16", "STYLEGAN2_VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
LPIPS = WeightsFile(
    "LPIPS (VGG16, v0.1)", "lpips", "STYLEGAN2_LPIPS", "net-lin_vgg_v0.1.pb",
    "http://rail.eecs.berkeley.edu/models/lpips/net-lin_vgg_v0.1.pb")

INCEPTION_INPUT, INCEPTION_OUTPUT = "ExpandDims:0", "pool_3:0"
INCEPTION_LOGITS = "softmax/logits/MatMul"  # pool_3 [N, 2048] x the classifier's weights [2048, 1008]
LPIPS_INPUTS = ("0:0", "1:0")
LPIPS_SIZE_LIMIT = 256  # larger images are box-filtered before LPIPS (downsample_for_lpips)
VGG16_SIZE = 224


class MissingWeightsError(FileNotFoundError):
    """A metric needs a pretrained network whose file was not given or does not exist."""


def resolve_weights(weights, path=None):
    """The file of `weights`: `path`, else the environment variable; raises MissingWeightsError."""
    path = path or os.environ.get(weights.env)
    if not path:
        raise MissingWeightsError(
            f"{weights.name} weights are needed: download {weights.file_name} ({weights.url}) "
            f"and pass --{weights.flag}=PATH or set {weights.env}=PATH")
    if not Path(path).is_file():
        raise MissingWeightsError(f"{weights.name} weights: {path} is not a file "
                                  f"(expected {weights.file_name}, from {weights.url})")
    return str(path)


def file_identity(path):
    """A short string naming the file's content (size and SHA-256 of its first and last MiB)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(size - (1 << 20), 0))
        digest.update(f.read())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """uint8 images [N, H, W, C] -> float32 features [N, D]; `identity` keys cached statistics."""

    name: str
    identity: str
    extract: Callable

    def __call__(self, images):
        images = tf.convert_to_tensor(images)
        if images.dtype != tf.uint8 or images.shape.rank != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"{self.name}: expected uint8 images [N, H, W, 1 or 3], "
                             f"got {images.dtype.name} {images.shape}")
        if images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)
        return np.asarray(self.extract(images), dtype=np.float32)


def _read_graph_def(path, member_name):
    """GraphDef from a .pb file, or from the member `member_name` of a .tgz/.tar.gz archive."""
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if Path(m.name).name == member_name]
            if not members:
                raise ValueError(f"{path}: the archive holds no {member_name}")
            data = archive.extractfile(members[0]).read()
    else:
        data = Path(path).read_bytes()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as error:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a TensorFlow GraphDef (.pb): {error}") from error
    return _replace_removed_ops(graph_def)


def _replace_removed_ops(graph_def):
    """graph_def with BatchNormWithGlobalNormalization nodes rewritten in current ops.

    The 2015 Inception graph uses that op, removed from GraphDef version 9 on:
    TensorFlow 2 imports it, but cannot run it inside a function. Each node
    becomes (t - mean) * rsqrt(variance + epsilon) [* gamma] + beta under the
    same name, so its consumers are unchanged.
    """
    if not any(node.op == "BatchNormWithGlobalNormalization" for node in graph_def.node):
        return graph_def
    from tensorflow.core.framework import attr_value_pb2

    upgraded = tf.compat.v1.GraphDef()
    upgraded.versions.CopyFrom(graph_def.versions)
    upgraded.library.CopyFrom(graph_def.library)

    def add(name, op, inputs, dtype, **attrs):
        node = upgraded.node.add(name=name, op=op, input=inputs)
        node.attr["T" if op != "Const" else "dtype"].type = dtype
        for key, value in attrs.items():
            node.attr[key].CopyFrom(value)
        return name

    for node in graph_def.node:
        if node.op != "BatchNormWithGlobalNormalization":
            upgraded.node.add().CopyFrom(node)
            continue
        data = [i for i in node.input if not i.startswith("^")]
        control = [i for i in node.input if i.startswith("^")]
        t, mean, variance, beta, gamma = data
        dtype = node.attr["T"].type
        name = node.name
        epsilon = tf.make_tensor_proto(node.attr["variance_epsilon"].f, tf.as_dtype(dtype))
        add(f"{name}/epsilon", "Const", [], dtype, value=attr_value_pb2.AttrValue(tensor=epsilon))
        scale = add(f"{name}/inverse_std", "Rsqrt",
                    [add(f"{name}/variance_epsilon", "AddV2", [variance, f"{name}/epsilon"], dtype)],
                    dtype)
        if node.attr["scale_after_normalization"].b:
            scale = add(f"{name}/scale", "Mul", [scale, gamma], dtype)
        centered = add(f"{name}/centered", "Sub", [t, mean], dtype)
        scaled = add(f"{name}/scaled", "Mul", [centered, scale], dtype)
        add(name, "AddV2", [scaled, beta, *control], dtype)
    return upgraded


def frozen_function(graph_def, input_names, output_name, input_specs, where):
    """A TF2 function running the frozen `graph_def` from the tensors `input_names` to `output_name`.

    The inputs replace the named tensors (input_map), so ops upstream of them
    never run, and the batch size is free even where the graph was frozen for
    one image.
    """
    names = {node.name for node in graph_def.node}
    missing = [n for n in [*input_names, output_name] if n.split(":")[0] not in names]
    if missing:
        raise ValueError(f"{where}: the graph has no tensors {missing}; is it the right file?")

    def body(*inputs):
        (output,) = tf.compat.v1.import_graph_def(
            graph_def, input_map=dict(zip(input_names, inputs)), return_elements=[output_name],
            name="net")
        return output

    wrapped = tf.compat.v1.wrap_function(body, list(input_specs))
    return wrapped.prune(feeds=wrapped.inputs, fetches=wrapped.outputs[0])


def load_inception(path=None):
    """FeatureExtractor of Inception-v3 pool_3 features [N, 2048] (FID, KID).

    Images of any size are resized to 299x299 inside the graph (bilinear) and
    scaled to [-1, 1] by it, exactly as the original FID code feeds it.
    """
    path = resolve_weights(INCEPTION, path)
    pool3 = _inception_pool3(_read_graph_def(path, INCEPTION.file_name), path)
    return FeatureExtractor("inception", f"inception-{file_identity(path)}", pool3)


def load_inception_probabilities(path=None):
    """FeatureExtractor of Inception-v3 class probabilities [N, 1008] (Inception Score).

    softmax(pool_3 features x the weights of the graph's classifier, `softmax/logits/MatMul`),
    without the classifier's bias: what OpenAI's original Inception Score code computes
    from this file, and what stylegan2-ada-pytorch's is50k matches (no_output_bias=True).
    The graph's own `softmax` output cannot be used: its pool_3 reshape is frozen for
    one image. Images are fed as by `load_inception`. ValueError naming the file when
    the graph has no such classifier (a stand-in or another network).
    """
    path = resolve_weights(INCEPTION, path)
    graph_def = _read_graph_def(path, INCEPTION.file_name)
    weights = tf.constant(_matmul_weights(graph_def, INCEPTION_LOGITS, path))
    pool3 = _inception_pool3(graph_def, path)

    def extract(images):
        features = pool3(images)
        if features.shape[-1] != weights.shape[0]:
            raise ValueError(f"{path}: pool_3 gives {features.shape[-1]} features but the classifier "
                             f"{INCEPTION_LOGITS} takes {weights.shape[0]}")
        return tf.nn.softmax(tf.matmul(features, weights))

    return FeatureExtractor("inception_probabilities",
                            f"inception-probabilities-{file_identity(path)}", extract)


def _inception_pool3(graph_def, path):
    """fn(images [N, H, W, 3] uint8) -> pool_3 features [N, D] of the Inception graph."""
    run = frozen_function(graph_def, [INCEPTION_INPUT], INCEPTION_OUTPUT,
                          [tf.TensorSpec([None, None, None, 3], tf.float32)], path)

    def pool3(images):
        features = run(tf.cast(images, tf.float32))
        return tf.reshape(features, [tf.shape(features)[0], -1])

    return pool3


def _matmul_weights(graph_def, matmul_name, where):
    """float32 [D, K]: the constant right-hand side of the MatMul node `matmul_name` (through
    Identity nodes, transposed when the node says so); ValueError naming `where` otherwise."""
    nodes = {node.name: node for node in graph_def.node}
    matmul = nodes.get(matmul_name)
    missing = ValueError(f"{where}: the graph has no classifier {matmul_name} with constant weights, "
                         f"so no class probabilities for the Inception Score; is it "
                         f"{INCEPTION.file_name} from {INCEPTION.url}?")
    if matmul is None or matmul.op != "MatMul" or len(matmul.input) < 2:
        raise missing
    node = nodes.get(matmul.input[1].split(":")[0])
    while node is not None and node.op == "Identity":
        node = nodes.get(node.input[0].split(":")[0])
    if node is None or node.op != "Const":
        raise missing
    weights = tf.make_ndarray(node.attr["value"].tensor).astype(np.float32)
    if matmul.attr["transpose_b"].b:
        weights = weights.T
    if weights.ndim != 2:
        raise missing
    return weights


def load_vgg16(path=None):
    """FeatureExtractor of VGG16 fc2 activations [N, 4096] (precision and recall).

    Images are area-resized to 224x224 and preprocessed as Keras' VGG16 expects
    (BGR, ImageNet mean subtracted).
    """
    import keras

    path = resolve_weights(VGG16, path)
    try:
        vgg = keras.applications.VGG16(include_top=True, weights=path)
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not Keras' VGG16 weights with the classifier "
                         f"({VGG16.file_name}): {error}") from error
    features = keras.Model(vgg.input, vgg.get_layer("fc2").output)

    @tf.function(reduce_retracing=True)
    def extract(images):
        x = tf.image.resize(tf.cast(images, tf.float32), [VGG16_SIZE, VGG16_SIZE], method="area")
        return features(keras.applications.vgg16.preprocess_input(x), training=False)

    return FeatureExtractor("vgg16", f"vgg16-{file_identity(path)}", extract)


def load_lpips(path=None):
    """LPIPS distance: fn(img0, img1) -> [N] float32, for float images [N, H, W, 3] in [-1, 1].

    Differentiable with respect to both images (the projector minimizes it).
    Grayscale images are repeated to RGB.
    """
    path = resolve_weights(LPIPS, path)
    graph_def = _read_graph_def(path, LPIPS.file_name)
    spec = tf.TensorSpec([None, 3, None, None], tf.float32)
    run = frozen_function(graph_def, list(LPIPS_INPUTS), _last_op_output(graph_def),
                          [spec, spec], path)

    def distance(img0, img1):
        img0, img1 = (tf.convert_to_tensor(x, tf.float32) for x in (img0, img1))
        if img0.shape.rank != 4 or img0.shape != img1.shape and None not in img0.shape:
            raise ValueError(f"LPIPS: expected two images [N, H, W, C] of one shape, got "
                             f"{img0.shape} and {img1.shape}")
        if img0.shape[-1] == 1:
            img0, img1 = tf.repeat(img0, 3, axis=-1), tf.repeat(img1, 3, axis=-1)
        result = run(tf.transpose(img0, [0, 3, 1, 2]), tf.transpose(img1, [0, 3, 1, 2]))
        return tf.reshape(result, [-1])

    return distance


def lpips_factor(size):
    """The box filter's factor for images of side `size`: size // 256 when that is 2 or more, else 1."""
    return max(1, size // LPIPS_SIZE_LIMIT)


def downsample_for_lpips(images):
    """NVIDIA's rule before LPIPS (PPL and the projector): images [N, H, W, C] larger than 256
    are box-filtered (averaged) by `lpips_factor(H)` in both directions; others are returned
    as they are. VGG-based LPIPS was made for about 224 pixels.

    H and W are static multiples of the factor (powers of two in practice: 1024 -> 256,
    and 512 -> 256 for PPL's 1024-pixel images cropped to the face).
    """
    height = images.shape[1]
    factor = 1 if height is None else lpips_factor(height)
    if factor == 1:
        return images
    width, channels = images.shape[2], images.shape[3]
    images = tf.reshape(images, [-1, height // factor, factor, width // factor, factor, channels])
    return tf.reduce_mean(images, axis=[2, 4])  # [N, H / factor, W / factor, C]


def _last_op_output(graph_def):
    """Name of the first output of the graph's last node (where lpips-tensorflow's graphs end)."""
    return f"{graph_def.node[-1].name}:0"

