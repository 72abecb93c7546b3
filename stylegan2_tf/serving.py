"""A generator as a SavedModel for TF Serving: stock TensorFlow ops in, uint8 images out.

Signatures (N = batch, R = img_resolution, C = img_channels):

    serving_default: z float32 [N, z_dim], c float32 [N, c_dim] (conditional networks only),
        truncation_psi float32 [], truncation_cutoff int32 [], noise_mode string []
        -> images uint8 [N, R, R, C]
    mapping: z, c, truncation_psi, truncation_cutoff -> ws float32 [N, num_ws, w_dim]
    synthesis: ws float32 [N, num_ws, w_dim], noise_mode -> images uint8 [N, R, R, C]

truncation_psi, truncation_cutoff and noise_mode are optional. The signatures'
functions give them export-time defaults as tensors, so tf.saved_model.save
writes their placeholders as PlaceholderWithDefault (and SignatureDef.defaults):
TF Serving and TF1 sessions may feed z (and c) only. The same functions are
saved as `generate`, `mapping` and `synthesis` of the loaded object, where TF2
callers may omit them too; `loaded.signatures[key]` needs every input.

truncation_cutoff <= 0 truncates every w, N > 0 the first N (psi 1 truncates
nothing). noise_mode "const" uses the stored noise, "random" fresh noise,
"none" none. Images are quantized by `inference.to_uint8_tf` (stock ops; the
numpy `to_uint8` of generate.py in TensorFlow): clip(x * 127.5 + 128, 0, 255)
truncated. The signatures fix dtypes and ranks;
sizes are checked in the graph by tf.debugging.Assert, whose messages name the
input and the expected shape. So are the batch (at most the export's max_batch
rows, so that one request cannot exhaust the server's memory) and the values
(z, c, ws and truncation_psi finite). An empty batch gives an empty result.
"""

import tensorflow as tf

from stylegan2_tf.files import atomic_folder, check_output_folder
from stylegan2_tf.inference import to_uint8_tf
from stylegan2_tf.network_io import float32_generator
from stylegan2_tf.networks.generator import NOISE_MODES
from stylegan2_tf.ops import use_impl

INPUT_DTYPES = {"z": tf.float32, "c": tf.float32, "ws": tf.float32, "truncation_psi": tf.float32,
                "truncation_cutoff": tf.int32, "noise_mode": tf.string}
SIGNATURE_FUNCTIONS = {"serving_default": "generate", "mapping": "mapping",
                       "synthesis": "synthesis"}
# Default max_batch: about this many bytes of activations per request, and at most MAX_BATCH_CAP
# rows; an image is counted as 8 float32 copies of its largest block's features (input, the
# grouped convolution's transposes and upsampling, output, image skip): an estimate, not a measure.
ACTIVATION_BUDGET = 2 * 2**30
MAX_BATCH_CAP = 64


def default_max_batch(G):
    """The default max_batch of an export: a request of that many images holds about
    ACTIVATION_BUDGET bytes of activations, between 1 and MAX_BATCH_CAP (config-f widths:
    64 at 32 px, 32 at 64 px, halved per doubling of the resolution down to 2 at 1024 px)."""
    synthesis = G.synthesis
    largest = max(res * res * block.out_channels
                  for res, block in zip(synthesis.block_resolutions, synthesis.blocks))
    return int(min(MAX_BATCH_CAP, max(1, ACTIVATION_BUDGET // (8 * 4 * largest))))


def input_shapes(G):
    """{input name: expected sizes, None = any} of the exported signatures."""
    return {"z": [None, G.z_dim], "c": [None, G.c_dim], "ws": [None, G.num_ws, G.w_dim],
            "truncation_psi": [], "truncation_cutoff": [], "noise_mode": []}


def _describe(name, dtype, dims):
    """'z float32 [N, 512]': an input or output, None sizes shown as N."""
    sizes = ", ".join("N" if size is None else str(size) for size in dims)
    return f"{name} {dtype.name} [{sizes}]"


def _assert_shape(x, name, dims):
    """An Assert op: x has len(dims) axes of sizes `dims` (None: any size).

    Raw Shape and Size ops, so no size is folded into a constant at trace time.
    """
    shape = tf.raw_ops.Shape(input=x)
    padded = tf.pad(shape, [[0, len(dims)]])[:len(dims)]  # [len(dims)], zeros past the rank
    ok = tf.equal(tf.raw_ops.Size(input=shape), len(dims))
    for axis, size in enumerate(dims):
        if size is not None:
            ok = tf.logical_and(ok, tf.equal(padded[axis], size))
    return tf.debugging.Assert(ok, [f"expected {_describe(name, x.dtype, dims)}; received shape", shape])


def _assert_finite(x, name, scalar):
    """An Assert op: no NaN or inf in x (an empty x passes); shows a scalar x, else the count."""
    finite = tf.math.is_finite(x)
    if scalar:
        data = [f"{name} must be finite; received", x]
    else:
        data = [f"{name} must be finite; NaN or inf values received:",
                tf.size(x) - tf.math.count_nonzero(finite, dtype=tf.int32)]
    return tf.debugging.Assert(tf.reduce_all(finite), data)


def _after(asserts, *tensors):
    """`tensors` through identities that run after every op of `asserts`."""
    with tf.control_dependencies(asserts):
        return [tf.identity(t) for t in tensors]


class ServingGenerator:
    """The exported computations of a generator, on tensors with checks (traced with impl "ref")."""

    def __init__(self, G, max_batch=None):
        self.G = G
        self.max_batch = default_max_batch(G) if max_batch is None else int(max_batch)
        if self.max_batch < 1:
            raise ValueError(f"ServingGenerator: max_batch must be at least 1. Received: {max_batch}")
        self.shapes = input_shapes(G)

    def _checks(self, **inputs):
        """Shape, then (float inputs) finiteness, then (batched inputs) batch checks."""
        checks = []
        for name, x in inputs.items():
            checks.append(_assert_shape(x, name, self.shapes[name]))
            if x.dtype.is_floating:
                checks.append(_assert_finite(x, name, scalar=not self.shapes[name]))
            if self.shapes[name]:
                rows = tf.raw_ops.Shape(input=x)[0]  # rank >= 1 here (the signatures fix ranks)
                checks.append(tf.debugging.Assert(
                    rows <= self.max_batch,
                    [(f"batch too large: at most {self.max_batch} rows of {name} per request "
                      f"(max_batch of this export); received"), rows]))
        return checks

    def mapping(self, z, c, truncation_psi, truncation_cutoff):
        """ws float32 [N, num_ws, w_dim] from z [N, z_dim], c [N, c_dim] or None, psi, cutoff."""
        G = self.G
        checks = self._checks(z=z, truncation_psi=truncation_psi,
                              truncation_cutoff=truncation_cutoff)
        if c is not None:
            checks += self._checks(c=c)
            checks.append(tf.debugging.Assert(
                tf.equal(tf.shape(c)[0], tf.shape(z)[0]),
                ["c must have one row per row of z; rows of c, z:", tf.shape(c)[0], tf.shape(z)[0]]))
            z, c = _after(checks, z, c)
        else:
            (z,) = _after(checks, z)
        ws = G.mapping(z, c)  # [N, num_ws, w_dim], not truncated
        cutoff = tf.where(truncation_cutoff > 0, truncation_cutoff, G.num_ws)
        return G.mapping.truncate(ws, truncation_psi, cutoff)

    def synthesis(self, ws, noise_mode):
        """uint8 images [N, R, R, C] from ws float32 [N, num_ws, w_dim] and a noise mode."""
        G = self.G
        matches = tf.equal(noise_mode, NOISE_MODES)  # [len(NOISE_MODES)]
        # Shown as UTF-8 (bad bytes replaced) and cut: the message must decode in any client.
        shown = tf.strings.unicode_transcode(tf.strings.substr(noise_mode, 0, 64), "UTF-8", "UTF-8",
                                             errors="replace")
        checks = self._checks(ws=ws, noise_mode=noise_mode)
        checks.append(tf.debugging.Assert(
            tf.reduce_any(matches),
            [f"noise_mode must be one of {', '.join(NOISE_MODES)}; received", shown]))
        ws, index = _after(checks, ws, tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32))
        branches = [lambda mode=mode: G.synthesis(ws, noise_mode=mode) for mode in NOISE_MODES]
        images = tf.cond(  # the grouped convolutions need N > 0
            tf.shape(ws)[0] > 0, lambda: tf.switch_case(index, branches),
            lambda: tf.zeros([0, G.img_resolution, G.img_resolution, G.img_channels]))
        return to_uint8_tf(images)


def _functions(serving, defaults):
    """{signature key: tf.function}; optional inputs default to tensors of `defaults`."""
    psi, cutoff, mode = (tf.constant(defaults[name], INPUT_DTYPES[name])
                         for name in ("truncation_psi", "truncation_cutoff", "noise_mode"))
    spec = {name: tf.TensorSpec([None] * len(dims), INPUT_DTYPES[name], name=name)
            for name, dims in serving.shapes.items()}
    options = [spec["truncation_psi"], spec["truncation_cutoff"]]

    if serving.G.c_dim > 0:
        @tf.function(input_signature=[spec["z"], spec["c"], *options, spec["noise_mode"]])
        def generate(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=mode):
            ws = serving.mapping(z, c, truncation_psi, truncation_cutoff)
            return {"images": serving.synthesis(ws, noise_mode)}

        @tf.function(input_signature=[spec["z"], spec["c"], *options])
        def mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff):
            return {"ws": serving.mapping(z, c, truncation_psi, truncation_cutoff)}
    else:
        @tf.function(input_signature=[spec["z"], *options, spec["noise_mode"]])
        def generate(z, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=mode):
            ws = serving.mapping(z, None, truncation_psi, truncation_cutoff)
            return {"images": serving.synthesis(ws, noise_mode)}

        @tf.function(input_signature=[spec["z"], *options])
        def mapping(z, truncation_psi=psi, truncation_cutoff=cutoff):
            return {"ws": serving.mapping(z, None, truncation_psi, truncation_cutoff)}

    @tf.function(input_signature=[spec["ws"], spec["noise_mode"]])
    def synthesis(ws, noise_mode=mode):
        return {"images": serving.synthesis(ws, noise_mode)}

    return {"serving_default": generate, "mapping": mapping, "synthesis": synthesis}


def _root(functions):
    """The object to save: the functions and exactly the variables they capture.

    Not the Keras model: its variables would be saved as copies of the ones
    the functions read, and a TF1 loader (TF Serving) would restore the copies.
    """
    root = tf.Module()
    captured = {}
    for key, function in functions.items():
        setattr(root, SIGNATURE_FUNCTIONS[key], function)
        for variable in function.get_concrete_function().variables:
            captured.setdefault(id(variable), variable)
    root.weights = list(captured.values())
    return root


def _summary(serving, functions, defaults):
    """One line per signature: 'key(inputs, optional = default) -> outputs', then the batch limit."""
    lines = []
    for key, function in functions.items():
        inputs = []
        for spec in function.input_signature:
            text = _describe(spec.name, spec.dtype, serving.shapes[spec.name])
            inputs.append(f"{text} = {defaults[spec.name]!r}" if spec.name in defaults else text)
        outputs = [_describe(name, tensor.dtype, tensor.shape.as_list())
                   for name, tensor in function.get_concrete_function().structured_outputs.items()]
        lines.append(f"{key}({', '.join(inputs)}) -> {', '.join(outputs)}")
    lines.append(f"N <= {serving.max_batch} (max_batch)")
    return lines


def check_export_dir(export_dir):
    """Path(export_dir) if it can be a new SavedModel folder: missing or an empty folder, with
    no file above it; else files.OutputPathError (a ValueError) saying why."""
    return check_output_folder(export_dir, empty=True, taken_hint="TF Serving expects a new "
                               "numbered version folder (e.g. model/2)")


def export_saved_model(G, export_dir, truncation_psi=1.0, truncation_cutoff=None,
                       noise_mode="const", force_fp32=False, max_batch=None):
    """Writes G as a SavedModel for TF Serving, aside and then renamed to export_dir.

    Args:
        G: a Generator; traced with the reference ops (impl "ref": stock TF ops only).
        export_dir: the folder to create, usually model/<version>; must be
            missing or empty.
        truncation_psi: float, default of the truncation_psi input.
        truncation_cutoff: int or None, default of truncation_cutoff (None or
            <= 0: every w).
        noise_mode: "const", "random" or "none", default of noise_mode.
        force_fp32: compute every block in float32, also where G has float16
            blocks (num_fp16_res), as NVIDIA's force_fp32.
        max_batch: int >= 1 or None, the most rows a request may have (larger
            ones fail with a message naming the limit). None: default_max_batch(G),
            about 2 GiB of activations, at most 64.

    Returns:
        A list of lines describing the signatures, e.g.
        "mapping(z float32 [N, 512], truncation_psi float32 [] = 0.7, ...) -> ws float32 [N, 18, 512]",
        and last "N <= 64 (max_batch)".
    """
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}. Received: {noise_mode!r}")
    export_dir = check_export_dir(export_dir)
    defaults = {"truncation_psi": float(truncation_psi),
                "truncation_cutoff": int(truncation_cutoff or 0), "noise_mode": noise_mode}
    serving = ServingGenerator(float32_generator(G) if force_fp32 else G, max_batch)
    with use_impl("ref"):  # every function traces here: stock ops only
        functions = _functions(serving, defaults)
        export_dir.parent.mkdir(parents=True, exist_ok=True)
        atomic_folder(export_dir, lambda partial: tf.saved_model.save(
            _root(functions), str(partial), signatures=functions))
        return _summary(serving, functions, defaults)
