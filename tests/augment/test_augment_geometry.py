"""Geometric augmentations with given draws against an independent numpy model of the reference's
resampling (stylegan2-ada-pytorch augment.py: normalized affine_grid / grid_sample coordinates),
and against the analytic transforms on smooth images."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe
from stylegan2_tf.augment.geometry import SYM6

# --- numpy model ---------------------------------------------------------------------------------


def translate2d(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float64)


def scale2d(sx, sy):
    return np.diag([sx, sy, 1.0])


def rotate2d(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def upfirdn_axis(x, f, axis, up=1, down=1, pad0=0, pad1=0, gain=1.0, flip_filter=False):
    """1-D upfirdn along `axis`: zero insertion, pad (negative crops), convolution, decimation."""
    x = np.moveaxis(x, axis, -1)
    u = np.zeros(x.shape[:-1] + (x.shape[-1] * up,))
    u[..., ::up] = x
    u = np.pad(u, [(0, 0)] * (u.ndim - 1) + [(max(pad0, 0), max(pad1, 0))])
    u = u[..., max(-pad0, 0) : u.shape[-1] - max(-pad1, 0)]
    taps = np.asarray(f, np.float64) if flip_filter else np.asarray(f, np.float64)[::-1]
    k = taps.size
    out = sum(u[..., t : u.shape[-1] - k + 1 + t] * taps[t] for t in range(k)) * gain
    return np.moveaxis(out[..., ::down], -1, axis)


def grid_sample(images, ix, iy):
    """Bilinear sampling of images [N, H, W, C] at pixel positions ix, iy [N, Ho, Wo], zeros outside."""
    n, h, w, _ = images.shape
    x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
    batch = np.arange(n)[:, None, None]
    out = 0
    for xi, wx in ((x0, x0 + 1 - ix), (x0 + 1, ix - x0)):
        for yi, wy in ((y0, y0 + 1 - iy), (y0 + 1, iy - y0)):
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            values = images[batch, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out = out + (wx * wy * inside)[..., None] * values
    return out


def geometric(images, g_inv):
    """The reference's resampling of images [N, H, W, C] by inverse matrices [N, 3, 3], float64."""
    _, h, w, _ = images.shape
    f = np.asarray(SYM6) / np.sum(SYM6)
    hz_pad = f.size // 4
    cx, cy = (w - 1) / 2, (h - 1) / 2
    points = g_inv @ np.array([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]]).T
    margin = np.concatenate([-points[:, :2], points[:, :2]], axis=1).max(axis=(0, 2))
    margin = np.minimum(np.maximum(margin + [hz_pad * 2 - cx, hz_pad * 2 - cy] * 2, 0), [w - 1, h - 1] * 2)
    mx0, my0, mx1, my1 = np.ceil(margin).astype(int)
    x = np.pad(images, [(0, 0), (my0, my1), (mx0, mx1), (0, 0)], mode="reflect")
    g = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2) @ g_inv
    for axis in (1, 2):  # upsample2d: up 2, padding (6, 5), gain 2 per axis
        x = upfirdn_axis(x, f, axis, up=2, pad0=(f.size + 1) // 2, pad1=(f.size - 2) // 2, gain=2)
    g = scale2d(2, 2) @ g @ scale2d(0.5, 0.5)
    g = translate2d(-0.5, -0.5) @ g @ translate2d(0.5, 0.5)
    out_h, out_w = (h + hz_pad * 2) * 2, (w + hz_pad * 2) * 2
    in_h, in_w = x.shape[1:3]
    g = scale2d(2 / in_w, 2 / in_h) @ g @ scale2d(out_w / 2, out_h / 2)
    xs = ((2 * np.arange(out_w) + 1) / out_w - 1)[None, None, :]  # affine_grid, align_corners=False
    ys = ((2 * np.arange(out_h) + 1) / out_h - 1)[None, :, None]
    gx = g[:, 0, 0, None, None] * xs + g[:, 0, 1, None, None] * ys + g[:, 0, 2, None, None]
    gy = g[:, 1, 0, None, None] * xs + g[:, 1, 1, None, None] * ys + g[:, 1, 2, None, None]
    x = grid_sample(x, ((gx + 1) * in_w - 1) / 2, ((gy + 1) * in_h - 1) / 2)
    for axis in (1, 2):  # downsample2d: down 2, padding -2 hz_pad + (5, 5), flipped filter
        x = upfirdn_axis(x, f, axis, down=2, pad0=-2 * hz_pad + (f.size - 1) // 2,
                         pad1=-2 * hz_pad + (f.size - 2) // 2, flip_filter=True)
    return x


# --- helpers -------------------------------------------------------------------------------------

N, H, W, C = 4, 12, 16, 2  # non-square on purpose
GATES_ON = np.zeros(N, np.float32)  # gate 0 < multiplier * p: applied
RNG = np.random.RandomState(0)
IMAGES = RNG.uniform(-1, 1, [N, H, W, C])


def augment(draws, images=IMAGES, p=1.0, static_shapes=False, **options):
    pipe = AugmentPipe(None, static_shapes=static_shapes, **options)
    draws = {name: tf.constant(value, tf.float32) for name, value in draws.items()}
    return pipe.apply(tf.constant(images), p, draws).numpy()


def smooth_images(h, w):
    """[1, h, w, 1] low-frequency image and the function it samples (pixel centres at integers)."""
    def f(x, y):
        return np.sin(0.12 * x + 0.07 * y + 0.3) + 0.5 * np.cos(0.09 * y - 0.05 * x)
    ys, xs = np.mgrid[:h, :w].astype(np.float64)
    return f(xs, ys)[None, :, :, None], f


# --- tests ---------------------------------------------------------------------------------------


def test_sym6_is_an_orthonormal_wavelet_filter():
    h = np.asarray(SYM6)
    assert np.isclose(h.sum(), np.sqrt(2), atol=1e-12)
    for shift in range(h.size // 2):
        assert np.isclose(np.dot(h[: h.size - 2 * shift], h[2 * shift :]), float(shift == 0), atol=1e-12)


def test_xflip_and_integer_translation_match_the_model():
    u_flip = np.array([0.7, 0.2, 0.9, 0.5], np.float32)  # floor(2u): flip, none, flip, flip
    u_int = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.8], [0.0, 0.99]], np.float32)
    out = augment({"xflip": u_flip, "xflip_gate": GATES_ON, "xint": u_int, "xint_gate": GATES_ON},
                  xflip=1, xint=1)
    t = (u_int.astype(np.float64) * 2 - 1) * 0.125
    g = np.stack([scale2d(1 - 2 * np.floor(2 * uf), 1) @ translate2d(-np.round(tx * W), -np.round(ty * H))
                  for uf, (tx, ty) in zip(u_flip, t)])
    np.testing.assert_allclose(out, geometric(IMAGES, g), atol=1e-6)
    assert np.array_equal(out[1], IMAGES[1])  # identity matrix: the input itself


def test_integer_translation_is_a_shift_of_the_reflected_image():
    # u = 0.9 -> t = 0.1 * 16 = 1.6 -> 2 pixels right; u = 0.2 -> t = -0.075 * 12 = -0.9 -> 1 pixel up.
    out = augment({"xint": np.array([[0.9, 0.2]], np.float32), "xint_gate": GATES_ON[:1]},
                  images=IMAGES[:1], xint=1)
    padded = np.pad(IMAGES[:1], [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    np.testing.assert_allclose(out, padded[:, 2 + 1 : 2 + 1 + H, 2 - 2 : 2 - 2 + W], atol=1e-6)


@pytest.mark.parametrize("k", range(4))
def test_rotate90_matches_the_model_and_rotates_a_smooth_image(k):
    u = np.full([1], (k + 0.5) / 4, np.float32)
    x, _ = smooth_images(16, 16)
    out = augment({"rotate90": u, "rotate90_gate": GATES_ON[:1]}, images=x, rotate90=1)
    np.testing.assert_allclose(out, geometric(x, rotate2d(np.pi / 2 * k)[None]), atol=1e-5)
    # Output (x, y) takes the input at rotate(k * 90 deg) @ (x, y): np.rot90 by k (y down), up to
    # the reference's sub-pixel shift of mirrored content (see the x-flip test).
    expected = np.rot90(x[0], k, axes=(0, 1))
    np.testing.assert_allclose(out[0, 4:-4, 4:-4], expected[4:-4, 4:-4], atol=2e-2)


def test_xflip_of_a_smooth_image_is_a_mirror_shifted_by_a_tenth_of_a_pixel():
    # The reference resamples flips too: sym6 is not symmetric, so up- then downsampling a
    # mirrored image delays it by ~0.098 pixel; this port keeps that.
    def f(x):
        return np.sin(0.1 * x) + 0.3 * np.cos(0.05 * x)
    x = np.tile(f(np.arange(64.0))[None, None, :, None], [1, 4, 1, 1])
    out = augment({"xflip": np.array([0.9], np.float32), "xflip_gate": GATES_ON[:1]}, images=x, xflip=1)
    mirrored = f(63 - np.arange(64.0) - 0.098)
    np.testing.assert_allclose(out[0, 2, 12:-12, 0], mirrored[12:-12], atol=5e-5)


GENERAL = {
    "scale": ({"scale": [0.5, -1.0, 2.0, 0.1]}, lambda d: scale2d(*[2.0 ** (-d["scale"] * 0.2)] * 2)),
    "aniso": ({"aniso": [0.5, -1.0, 2.0, 0.1]},
              lambda d: scale2d(2.0 ** (-d["aniso"] * 0.2), 2.0 ** (d["aniso"] * 0.2))),
    "xfrac": ({"xfrac": [[0.5, -1.0], [2.0, 0.1], [0.0, 1.5], [-2.0, -0.3]]},
              lambda d: translate2d(-d["xfrac"][0] * 0.125 * W, -d["xfrac"][1] * 0.125 * H)),
    "rotate": ({"rotate_pre": [0.1, 0.6, 0.9, 0.5], "rotate_post": [0.3, 0.75, 0.0, 0.5]},
               lambda d: rotate2d((d["rotate_pre"] * 2 - 1) * np.pi) @ rotate2d((d["rotate_post"] * 2 - 1) * np.pi)),
}


@pytest.mark.parametrize("name", list(GENERAL))
def test_general_geometric_transform_matches_the_model(name):
    values, matrix = GENERAL[name]
    draws = {key: np.asarray(value, np.float32) for key, value in values.items()}
    draws.update({key + "_gate": GATES_ON for key in values})
    out = augment(draws, **{name: 1})
    g = np.stack([matrix({key: value[i].astype(np.float64) for key, value in draws.items()}) for i in range(N)])
    np.testing.assert_allclose(out, geometric(IMAGES, g), atol=1e-5)


def test_all_geometric_transforms_compose_in_the_reference_order():
    pipe = AugmentPipe("bg")
    draws = {k: v.numpy() for k, v in pipe.draw([N, H, W, C], [7, 8]).items()}
    out = augment(draws, **pipe.options)
    g = []
    for i in range(N):  # p = 1: every gate (uniform in [0, 1)) selects
        d = {k: v[i].astype(np.float64) for k, v in draws.items()}
        theta1, theta2 = ((d["rotate_pre"] * 2 - 1) * np.pi, (d["rotate_post"] * 2 - 1) * np.pi)
        t = (d["xint"] * 2 - 1) * 0.125
        s, a = 2 ** (d["scale"] * 0.2), 2 ** (d["aniso"] * 0.2)
        g.append(scale2d(1 - 2 * np.floor(2 * d["xflip"]), 1) @ rotate2d(np.pi / 2 * np.floor(4 * d["rotate90"]))
                 @ translate2d(-np.round(t[0] * W), -np.round(t[1] * H)) @ scale2d(1 / s, 1 / s)
                 @ rotate2d(theta1) @ scale2d(1 / a, a) @ rotate2d(theta2)
                 @ translate2d(-d["xfrac"][0] * 0.125 * W, -d["xfrac"][1] * 0.125 * H))
    np.testing.assert_allclose(out, geometric(IMAGES, np.stack(g)), atol=1e-5)


def test_rotation_and_fractional_translation_follow_the_analytic_matrix():
    x, f = smooth_images(32, 32)
    theta = (0.6 * 2 - 1) * np.pi  # rotate_pre draw 0.6
    t = np.array([0.4, -0.24]) * 0.125 * 32  # xfrac draws (0.4, -0.24) -> (1.6, -0.96) pixels
    out = augment({"rotate_pre": np.array([0.6], np.float32), "rotate_pre_gate": GATES_ON[:1],
                   "rotate_post": np.array([0.5], np.float32), "rotate_post_gate": GATES_ON[:1],
                   "xfrac": np.array([[0.4, -0.24]], np.float32), "xfrac_gate": GATES_ON[:1]},
                  images=x, rotate=1, xfrac=1)
    ys, xs = np.mgrid[:32, :32].astype(np.float64) - 15.5
    # Output pixel at centred (x, y) takes the input at rotate(theta) @ ((x, y) - t).
    c, s = np.cos(theta), np.sin(theta)
    src_x = c * (xs - t[0]) - s * (ys - t[1]) + 15.5
    src_y = s * (xs - t[0]) + c * (ys - t[1]) + 15.5
    interior = (np.minimum(src_x, src_y) > 4) & (np.maximum(src_x, src_y) < 27)
    interior &= (np.abs(xs) < 11) & (np.abs(ys) < 11)
    assert interior.sum() > 200
    np.testing.assert_allclose(out[0, ..., 0][interior], f(src_x, src_y)[interior], atol=5e-3)


def test_rotate_probability_gives_p_for_pre_or_post_rotation():
    p = 0.5
    p_rot = 1 - np.sqrt(1 - p)  # 0.2929: P(pre or post) = 1 - (1 - p_rot)^2 = p
    x, _ = smooth_images(16, 16)
    x = np.repeat(x, 2, axis=0)
    gates = np.array([p_rot - 1e-3, p_rot + 1e-3], np.float32)
    out = augment({"rotate_pre": np.full([2], 0.7, np.float32), "rotate_pre_gate": gates,
                   "rotate_post": np.full([2], 0.5, np.float32), "rotate_post_gate": np.ones([2], np.float32)},
                  images=x, p=p, rotate=1)
    assert not np.allclose(out[0], x[0], atol=1e-2)
    assert np.array_equal(out[1], x[1])


def test_constant_images_stay_constant():
    pipe = AugmentPipe("bg")
    x = np.full([N, H, W, 1], 0.75)
    out = augment({k: v.numpy() for k, v in pipe.draw([N, H, W, 1], [1, 2]).items()}, images=x, **pipe.options)
    # Reflect padding and unit-gain filters keep constants, up to the reference's zeros beyond
    # the margin, which the outermost filter taps reach at a corner (~1e-5 here).
    np.testing.assert_allclose(out, x, atol=1e-4)


def test_static_shapes_give_the_same_result():
    pipe = AugmentPipe("bg")
    for key in ([1, 2], [3, 4]):
        draws = {k: v.numpy() for k, v in pipe.draw([N, H, W, C], key).items()}
        dynamic = augment(draws, **pipe.options)
        static = augment(draws, static_shapes=True, **pipe.options)
        np.testing.assert_allclose(static, dynamic, atol=1e-12)
