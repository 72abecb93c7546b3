"""upfirdn2d: reference vs an independent numpy model, custom vs reference (values,
first- and second-order gradients), numeric gradients, helpers and errors."""

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from op_checks import assert_numeric_gradient, assert_same_op

from stylegan2_tf.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d


def numpy_upfirdn2d(x, f, up, down, padding, flip_filter=False, gain=1.0):
    """Direct model of the definition: zero insertion, pad/crop, convolution, decimation."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    n, h, w, c = x.shape
    u = np.zeros([n, h * upy, w * upx, c])
    u[:, ::upy, ::upx, :] = x
    u = np.pad(u, [(0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)])
    u = u[:, max(-py0, 0) : u.shape[1] - max(-py1, 0), max(-px0, 0) : u.shape[2] - max(-px1, 0), :]
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = f2.astype(np.float64) * gain
    taps = f2 if flip_filter else f2[::-1, ::-1]  # correlation weights
    fh, fw = taps.shape
    out_h, out_w = u.shape[1] - fh + 1, u.shape[2] - fw + 1
    y = np.zeros([n, out_h, out_w, c])
    for ky, kx in itertools.product(range(fh), range(fw)):
        y += taps[ky, kx] * u[:, ky : ky + out_h, kx : kx + out_w, :]
    return y[:, ::downy, ::downx, :]


def _case_grid():
    """A covering grid of (x shape, up, down, padding, filter taps, separable, flip)."""
    rng = np.random.default_rng(1)
    shapes = [(1, 5, 7, 3), (2, 8, 8, 4), (3, 6, 9, 2), (1, 1, 4, 5)]
    scalings = [(1, 1), (2, 1), (1, 2), (4, 1), (1, 4), (2, 2), (4, 2), ((2, 1), (1, 2))]
    paddings = [0, 1, (2, 1), (1, 2, 0, 3), (-1, 2, 2, -1), (3, -2, -1, 4)]
    cases = []
    for i, (up, down) in enumerate(scalings):
        for j, taps in enumerate(range(1, 7)):
            shape = shapes[(i + j) % len(shapes)]
            padding = paddings[(i * 7 + j) % len(paddings)]
            separable = bool(rng.integers(2)) and taps > 1
            flip = bool(rng.integers(2))
            cases.append((shape, up, down, padding, taps, separable, flip))
    return cases


def _expand(up, down, padding):
    up = up if isinstance(up, tuple) else (up, up)
    down = down if isinstance(down, tuple) else (down, down)
    if isinstance(padding, int):
        padding = (padding,) * 4
    elif len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    return up, down, padding


def _valid(shape, up, down, padding, taps):
    up, down, padding = _expand(up, down, padding)
    return (shape[2] * up[0] + padding[0] + padding[1] >= taps
            and shape[1] * up[1] + padding[2] + padding[3] >= taps)


CASES = [c for c in _case_grid() if _valid(c[0], c[1], c[2], c[3], c[4])]


def _filter(taps, separable, seed):
    values = np.random.default_rng(seed).uniform(0.5, 2.0, size=taps).astype(np.float32)
    if separable:
        return values
    return np.outer(values, np.random.default_rng(seed + 1).uniform(0.5, 2.0, size=taps)).astype(np.float32)


def _x(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_grid_is_large_enough():
    assert len(CASES) >= 40
    assert {c[4] for c in CASES} == {1, 2, 3, 4, 5, 6}


@pytest.mark.parametrize("shape,up,down,padding,taps,separable,flip", CASES)
def test_reference_matches_numpy_model(shape, up, down, padding, taps, separable, flip):
    x, f = _x(shape), _filter(taps, separable, taps)
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl="ref")
    expected = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding), flip, 1.5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,up,down,padding,taps,separable,flip", CASES)
def test_custom_matches_reference_float32(shape, up, down, padding, taps, separable, flip):
    f = _filter(taps, separable, taps)

    def run(impl):
        return lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip,
                                   gain=0.7, impl=impl)

    assert_same_op(run("custom"), run("ref"), [_x(shape)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,up,down,padding,taps,separable,flip", CASES[::4])
def test_custom_matches_reference_float16(shape, up, down, padding, taps, separable, flip):
    f = _filter(taps, separable, taps) / taps  # keep float16 sums small
    x = _x(shape, np.float16)
    y_custom = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, impl="custom")
    y_exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding), flip)
    assert y_custom.dtype == tf.float16
    np.testing.assert_allclose(y_custom.numpy().astype(np.float64), y_exact, rtol=2e-3, atol=2e-3)

    def run(impl):
        return lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, impl=impl)

    assert_same_op(run("custom"), run("ref"), [x], rtol=1e-2, atol=1e-2)


# Pixels of a cache line or more take the CPU path that prefetches the input rows of the
# next output row: windows that skip rows (down > taps), lie wholly in the padding, start
# cropped, or run past the image's last row; channel counts that leave tails of 32 and 8.
@pytest.mark.parametrize("shape,up,down,padding,taps", [
    ((2, 11, 9, 16), 1, 3, (5, 4, 6, 7), 2),
    ((1, 12, 10, 45), 2, 1, (3, -2, -1, 4), 4),
    ((2, 9, 13, 24), 1, 2, (-3, 1, 2, -2), 4),
    ((1, 8, 8, 64), 2, 2, (2, 1, 1, 2), 3),
    ((1, 6, 7, 19), (1, 2), (2, 1), (7, 0, 0, 6), 5),
])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float16, 2e-3)])
def test_custom_wide_pixels(shape, up, down, padding, taps, dtype, tol):
    f = _filter(taps, False, taps)
    x = _x(shape, dtype)
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, impl="custom")
    y_exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding))
    np.testing.assert_allclose(y.numpy().astype(np.float64), y_exact, rtol=tol, atol=tol)


# Long separable filters on rows longer than the CPU kernel's 512-value chunk: the column
# pass (whole rows at once) and the unrolled single-row windows of 5 to 8 taps.
@pytest.mark.parametrize("shape,up,down,padding", [
    ((2, 9, 200, 3), 2, 1, (11, 10, 11, 10)),  # the sym6 2x upsampling of augmentation
    ((1, 13, 75, 8), 1, 2, (-3, 2, 1, 0)),
    ((2, 7, 66, 1), (1, 2), (2, 1), 5),
])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float16, 2e-3)])
def test_custom_long_filters_and_rows(shape, up, down, padding, dtype, tol):
    f = _filter(12, True, 12) / 12
    x = _x(shape, dtype)
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, impl="custom")
    y_exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding))
    assert y.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(y.numpy().astype(np.float64), y_exact, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,up,down,padding,taps,separable,flip", CASES[::6])
def test_reference_gradient_is_numeric_gradient(shape, up, down, padding, taps, separable, flip):
    f = _filter(taps, separable, taps)
    x = _x((1,) + shape[1:3] + (2,), np.float64)
    assert_numeric_gradient(
        lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, impl="ref"), [x]
    )


def test_custom_in_tf_function_and_batch_of_one():
    f = setup_filter([1, 3, 3, 1])
    fn = tf.function(lambda x: upsample2d(x, f, impl="custom"))
    x = _x((1, 4, 6, 3))
    np.testing.assert_allclose(fn(x).numpy(), upsample2d(x, f, impl="ref").numpy(), atol=1e-5)
    assert fn(x).shape == (1, 8, 12, 3)


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == np.float32
    np.testing.assert_allclose(f.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-6)
    assert setup_filter(np.ones(8)).shape == (8,)  # >= 8 taps stay separable
    np.testing.assert_allclose(setup_filter(np.ones(8), gain=4).sum(), 2.0, rtol=1e-6)
    np.testing.assert_allclose(setup_filter([1, 2], gain=4).sum(), 4.0, rtol=1e-6)
    np.testing.assert_allclose(setup_filter([1, 2], flip_filter=True)[0, 0], 4 / 9, rtol=1e-6)
    assert setup_filter(None).shape == (1, 1)


@pytest.mark.parametrize("impl", ["ref", "custom"])
def test_resampling_helpers_keep_constant_images_constant(impl):
    f = setup_filter([1, 3, 3, 1])
    x = np.full((2, 8, 6, 3), 0.5, np.float32)
    up = upsample2d(x, f, impl=impl).numpy()
    down = downsample2d(x, f, impl=impl).numpy()
    same = filter2d(x, f, impl=impl).numpy()
    assert up.shape == (2, 16, 12, 3) and down.shape == (2, 4, 3, 3) and same.shape == x.shape
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 0.5, rtol=1e-5)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], 0.5, rtol=1e-5)
    np.testing.assert_allclose(same[:, 2:-2, 2:-2], 0.5, rtol=1e-5)


def test_helpers_match_between_impls_with_separable_filter():
    f = setup_filter(np.arange(1, 9), separable=True)
    x = _x((2, 9, 10, 3))
    for helper, kwargs in ((upsample2d, {"up": (2, 4)}), (downsample2d, {"down": 2}), (filter2d, {})):
        ref = helper(x, f, impl="ref", **kwargs).numpy()
        custom = helper(x, f, impl="custom", **kwargs).numpy()
        np.testing.assert_allclose(custom, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"up": 0}, ValueError, r"up must be an int in \[1, 2\*\*31\)"),
        ({"down": 2**40}, ValueError, r"down must be an int in \[1, 2\*\*31\)"),
        ({"down": [2]}, ValueError, "down must be"),
        ({"padding": [1, 2, 3]}, ValueError, "padding must be"),
        ({"padding": -3}, ValueError, "empty output"),
        ({"impl": "cuda"}, ValueError, "impl must be one of"),
        ({"f": np.ones([2, 2, 2])}, ValueError, "filter must be"),
        ({"f": [1.0, np.nan]}, ValueError, "non-finite"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, pattern):
    args = {"x": _x((1, 4, 4, 1)), "f": setup_filter([1, 1])}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        upfirdn2d(**args)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="rank-4 NHWC"):
        upfirdn2d(np.zeros((4, 4, 1), np.float32), None)
    with pytest.raises(TypeError, match="floating-point"):
        upfirdn2d(np.zeros((1, 4, 4, 1), np.int32), None)
    with pytest.raises(ValueError, match="impl='custom' supports float16/float32"):
        upfirdn2d(np.zeros((1, 4, 4, 1), np.float64), None, impl="custom")


def test_auto_falls_back_to_reference_with_one_warning(tmp_path):
    """Without a built library, "auto" warns once, naming the reason, and still computes."""
    script = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from stylegan2_tf.ops import setup_filter, upfirdn2d
        x = np.ones((1, 4, 4, 2), np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                y = upfirdn2d(x, setup_filter([1, 2, 1]), up=2)
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        print(len(messages), y.shape)
        print(messages[0])
        try:
            upfirdn2d(x, None, impl="custom")
        except Exception as error:
            print(type(error).__name__, error)
        """
    )
    env = dict(os.environ, STYLEGAN2_TF_OPS_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "1 (1, 6, 6, 2)"
    assert "does not exist" in out[1] and "impl='ref'" in out[1]
    assert out[2].startswith("CustomOpUnavailableError")


def test_unloadable_library_gets_a_clear_error(tmp_path):
    """A library file that is not a loadable op library: "custom" says so and what to do."""
    (tmp_path / "_upfirdn2d.so").write_bytes(b"not an ELF file")
    script = textwrap.dedent(
        """
        from stylegan2_tf.ops import upfirdn2d
        try:
            upfirdn2d([[[[1.0]]]], None, impl="custom")
        except Exception as error:
            print(type(error).__name__, error)
        """
    )
    env = dict(os.environ, STYLEGAN2_TF_OPS_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("CustomOpUnavailableError"), out
    assert "cannot be loaded" in out and "pip install -e ." in out


# The cases run with each copy of the CPU loops: the blur, down- and upsampling of wide pixels.
_ISA_CASES = [(1, 1, (1, 2, 2, 1)), (1, 2, 1), (2, 1, (2, 1, 2, 1))]


def test_baseline_cpu_loops_on_request(tmp_path):
    """STYLEGAN2_TF_CPU_ISA=baseline runs the baseline loops even where the library would use
    its AVX-512 copy (as here, when the CPU has it); both agree with the model."""
    x, f = _x((2, 13, 11, 40)), _filter(4, False, 3)
    np.savez(tmp_path / "inputs.npz", x=x, f=f)
    script = textwrap.dedent(
        f"""
        import numpy as np
        from stylegan2_tf.ops import upfirdn2d
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        np.savez({str(tmp_path / "baseline.npz")!r}, *[
            upfirdn2d(inputs["x"], inputs["f"], up=up, down=down, padding=padding,
                      impl="custom").numpy() for up, down, padding in {_ISA_CASES!r}])
        """
    )
    env = dict(os.environ, STYLEGAN2_TF_CPU_ISA="baseline")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    with np.load(tmp_path / "baseline.npz") as saved:
        baseline = [saved[f"arr_{i}"] for i in range(len(_ISA_CASES))]
    for (up, down, padding), base in zip(_ISA_CASES, baseline):
        auto = upfirdn2d(x, f, up=up, down=down, padding=padding, impl="custom").numpy()
        exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding))
        np.testing.assert_allclose(base, exact, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(auto, base, rtol=1e-5, atol=1e-5)


def test_malformed_cpu_isa_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("STYLEGAN2_TF_CPU_ISA", "avx-512")
    with pytest.raises(ValueError, match=r"\$STYLEGAN2_TF_CPU_ISA='avx-512': expected auto .* or baseline"):
        upfirdn2d(np.ones((1, 4, 4, 1), np.float32), None, impl="custom")


@pytest.mark.parametrize("impl", ["ref", "custom"])
@pytest.mark.parametrize("shape", [(0, 4, 5, 3), (2, 4, 5, 0)])
def test_empty_batch_or_channels(impl, shape):
    y = upfirdn2d(np.zeros(shape, np.float32), setup_filter([1, 3, 3, 1]), up=2, impl=impl)
    assert y.shape == (shape[0], 5, 7, shape[3])


def test_custom_with_unknown_batch_in_tf_function():
    f = setup_filter([1, 3, 3, 1])
    fn = tf.function(
        lambda x: downsample2d(x, f, impl="custom"),
        input_signature=[tf.TensorSpec([None, 8, 6, 3], tf.float32)],
    )
    x = _x((3, 8, 6, 3))
    np.testing.assert_allclose(fn(x).numpy(), downsample2d(x, f, impl="ref").numpy(), atol=1e-6)


@pytest.mark.parametrize("up,padding,taps", [(2, (11, 10, 11, 10), 12), (2, (3, -1, 2, 5), 4), ((3, 2), 1, 5), (1, 2, 3)])
def test_custom_upsampling_with_unknown_sizes_to_second_order(up, padding, taps):
    """Sizes known only when running (augmentation pads by a data-dependent margin): the
    custom op and its gradients, whose padding cannot come from static shapes."""
    f = _filter(taps, True, taps)
    x = _x((2, 7, 5, 3), seed=3)

    def run(impl):
        graph = tf.function(lambda v: upfirdn2d(v, f, up=up, padding=padding, impl=impl),
                            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        return lambda v: graph(v)

    assert_same_op(run("custom"), run("ref"), [x], rtol=1e-5, atol=1e-5)


def test_unknown_sizes_along_downsampling_axes_use_the_reference():
    f = setup_filter([1, 3, 3, 1])
    spec = [tf.TensorSpec([None, None, 6, 3], tf.float32)]
    x = _x((1, 8, 6, 3))
    auto = tf.function(lambda v: downsample2d(v, f, down=(1, 2), impl="auto"), input_signature=spec)
    assert "StyleGAN2>Upfirdn2d" not in {op.type for op in auto.get_concrete_function().graph.get_operations()}
    np.testing.assert_allclose(auto(x).numpy(), downsample2d(x, f, down=(1, 2), impl="ref").numpy(), atol=1e-6)
    custom = tf.function(lambda v: downsample2d(v, f, down=(2, 1), impl="custom"), input_signature=spec)
    assert "StyleGAN2>Upfirdn2d" in {op.type for op in custom.get_concrete_function().graph.get_operations()}
    with pytest.raises(ValueError, match="static H, W along axes that downsample"):
        tf.function(lambda v: downsample2d(v, f, impl="custom"), input_signature=spec).get_concrete_function()


@pytest.mark.parametrize("rank_one", [True, False])
@pytest.mark.parametrize("channels", [3, 9])
def test_custom_2d_filters_on_few_and_many_channels(rank_one, channels):
    """A rank-one 2-D filter on few channels runs as two 1-D passes, any other in one pass:
    both equal the definition."""
    rng = np.random.default_rng(11)
    f = np.outer(rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 3)) if rank_one else rng.uniform(0.5, 2, (4, 3))
    f = (f / f.sum()).astype(np.float32)
    x = _x((2, 6, 7, channels), seed=12)
    for up, down, padding in ((2, 1, (2, 1, 1, 2)), (1, 2, 1), (3, 2, (0, 2, 3, -1))):
        y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=True, gain=3.0, impl="custom")
        y_exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding), True, 3.0)
        np.testing.assert_allclose(y.numpy(), y_exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("taps", [2, 3, 4])
@pytest.mark.parametrize("down,up_y,padding", [(1, 1, 1), (2, 1, (1, 2, 0, 1)), ((1, 2), 2, (3, 0, 2, 2))])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float16, 2e-3)])
def test_custom_2d_filters_on_channels_in_eights(taps, down, up_y, padding, dtype, tol):
    """2-D filters of 2-4 taps without upsampling along x on C = 8 k (the blur and
    downsampling of 256-px networks): channel blocks of 8 and their unrolled windows, whole
    inside the rows and clipped at their borders."""
    rng = np.random.default_rng(taps)
    f = (rng.uniform(0.5, 2, (taps + 1, taps)) / taps ** 2).astype(np.float32)
    x = _x((2, 5, 19, 24), dtype, seed=taps)
    up = (1, up_y)
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, impl="custom")
    y_exact = numpy_upfirdn2d(x.astype(np.float64), f, *_expand(up, down, padding))
    np.testing.assert_allclose(y.numpy().astype(np.float64), y_exact, rtol=tol, atol=tol)
