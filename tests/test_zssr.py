"""ZSSR: the augmentation's warps, sons, the lr policy, the self-ensemble, restoration, CLI."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax.baselines import zssr
from ikejax.cli import main
from ikejax.imaging import degrade, filters, kernels, metrics, resize
import cli_runner


def _ramp(h, w):
  return (np.arange(h)[:, None] * w + np.arange(w)[None]) / (h * w)


def test_warp_of_integer_shifts_and_quarter_turns_is_exact():
  x = jnp.asarray(np.random.default_rng(0).random((20, 20, 3)), jnp.float32)
  shift = jnp.array([[1.0, 0, -3], [0, 1, -5], [0, 0, 1]])  # out(p) = x(p + (3, 5))
  np.testing.assert_allclose(zssr.warp(x, shift, 12), x[5:17, 3:15], atol=1e-6)
  # A quarter turn about the centre, as ZSSR builds it: centre, rotate, centre back.
  c = 19 / 2.0
  to_c, back = (jnp.array([[1.0, 0, s * c], [0, 1, s * c], [0, 0, 1]]) for s in (-1, 1))
  rot = jnp.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])
  out = zssr.warp(x, back @ rot @ to_c, 20)
  np.testing.assert_allclose(out, np.rot90(np.asarray(x), 1), atol=1e-5)
  # Outside the image is zero (OpenCV's constant border).
  far = jnp.array([[1.0, 0, -100], [0, 1, 0], [0, 0, 1]])
  assert float(jnp.abs(zssr.warp(x, far, 8)).max()) == 0.0


def test_fathers_left_as_is_are_integer_crops_and_affine_ones_are_not():
  src = jnp.asarray(np.repeat(_ramp(60, 70)[..., None], 3, -1), jnp.float32)
  leave = zssr.PRESETS["paper"].replace(crop=16, leave_as_is_p=1.0, no_interp_p=0.0)
  affine = leave.replace(leave_as_is_p=0.0)
  unit = 1 / (60 * 70)
  for seed in range(4):
    f, m = zssr.augment(jax.random.key(seed), [src], [jnp.ones_like(src)], [1.0], 1.0, leave)
    f = np.asarray(f[..., 0], np.float64)
    np.testing.assert_allclose(np.diff(f, axis=1), unit, atol=1e-6)
    np.testing.assert_allclose(np.diff(f, axis=0), 70 * unit, atol=1e-6)
    assert float(jnp.abs(m - 1).max()) == 0.0
    g, _ = zssr.augment(jax.random.key(seed), [src], [src], [1.0], 1.0, affine)
    assert np.abs(np.diff(np.asarray(g[..., 0]), axis=1) - unit).max() > 1e-4


def test_gradual_sources_are_chosen_by_the_drawn_scale():
  small, big = (jnp.full((40, 40, 3), v, jnp.float32) for v in (0.25, 0.75))
  cfg = zssr.PRESETS["paper"].replace(crop=8)
  picks = [int(zssr.augment_transforms(jax.random.key(s), [(40, 40), (80, 80)], [1.0, 2.0],
                                       2.0, cfg)[0]) for s in range(60)]
  assert 0 < sum(picks) < 60  # scales in [0.5, 2]: both sources are used
  tops = [float(zssr.augment(jax.random.key(s), [small, big], [small, big], [1.0, 2.0], 1.0,
                             cfg)[0].max()) for s in range(8)]
  # max_scale 1: always the input (0.25; its cubic overshoot at a zero border stays < 0.3).
  assert 0.25 - 1e-6 <= max(tops) < 0.3


def test_son_kernels_sit_on_the_grid_and_bicubic_is_matlabs_downscale():
  k = degrade.gaussian_kernel(11, (2.0, 0.5), 0.4)
  shifted = zssr.son_kernel(k, 2)
  com = kernels.moments(shifted)["centre"]
  want = shifted.shape[0] // 2 + 0.5
  np.testing.assert_allclose(com, [want, want], atol=1e-3)
  assert shifted.sum() == pytest.approx(1.0)
  x = np.random.default_rng(1).random((40, 36, 3))
  son = np.asarray(zssr.son_of(jnp.asarray(x, jnp.float32),
                               jnp.asarray(zssr.son_kernel(None, 2), jnp.float32), 2))
  want = resize.imresize(x, 0.5, "matlab")
  np.testing.assert_allclose(son[3:-3, 3:-3], want[3:-3, 3:-3], atol=1e-5)


def test_lr_policy_keeps_a_descending_loss_and_cuts_a_flat_one():
  cfg = zssr.ZSSRConfig()
  steps = list(range(49, 600, 50))
  falling = [1.0 - 0.001 * s for s in steps]
  flat = [0.5 + 0.01 * ((-1) ** i) for i in range(len(steps))]
  assert zssr.lr_policy(299, 1e-3, 0, steps[:6], falling[:6], cfg) == (1e-3, 0)
  assert zssr.lr_policy(299, 1e-3, 0, steps[:6], flat[:6], cfg) == (1e-4, 299)
  assert zssr.lr_policy(298, 1e-3, 0, steps[:6], flat[:6], cfg) == (1e-3, 0)  # not a check
  assert zssr.lr_policy(239, 1e-3, 0, steps[:5], flat[:5], cfg) == (1e-3, 0)  # < min_iters
  assert zssr.lr_policy(539, 1e-4, 299, steps, flat, cfg) == (1e-4, 299)  # too soon again
  assert zssr.lr_policy(599, 1e-4, 299, steps, flat, cfg)[0] == pytest.approx(1e-5)


def test_self_ensemble_undoes_its_turns():
  """With the residual zeroed the net is the bicubic upscale, which every turn and mirror
  commutes with: the 8-way ensemble must equal one pass (a wrong undo would not)."""
  cfg = zssr.PRESETS["tiny"]
  params = zssr.create_state(jax.random.key(0), cfg).params
  params = jax.tree_util.tree_map(jnp.zeros_like, params)
  lr = np.random.default_rng(2).random((12, 16, 3))
  k = jnp.asarray(zssr.son_kernel(None, 2), jnp.float32)
  one = zssr.final_sr(params, lr, k, cfg.replace(self_ensemble=False), 2)
  eight = zssr.final_sr(params, lr, k, cfg.replace(self_ensemble=True), 2)
  assert one.shape == (24, 32, 3)
  np.testing.assert_allclose(eight, one, atol=2e-5)
  # ...and back-projection makes the output's son match the input.
  before = np.abs(np.asarray(zssr.son_of(jnp.asarray(filters.bicubic(lr, 2), jnp.float32), k, 2))
                  - lr).mean()
  after = np.abs(np.asarray(zssr.son_of(jnp.asarray(one, jnp.float32), k, 2)) - lr).mean()
  assert after < 0.5 * before


def _texture(n, seed):
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:n, 0:n] / n
  img = sum(np.sin(2 * math.pi * (f * x * np.cos(a) + f * y * np.sin(a)) + p)
            for f, a, p in zip(rng.uniform(3, 14, 12), rng.uniform(0, math.pi, 12),
                               rng.uniform(0, 6, 12)))
  img = (img - img.min()) / (img.max() - img.min())
  return np.stack([img, img ** 1.5, 1 - img], -1)


def test_zssr_with_the_true_gaussian_kernel_beats_bicubic():
  hr = _texture(128, 0)
  k = degrade.gaussian_kernel(11, (1.6, 1.6), 0.0)
  lr = np.clip(degrade.blur_subsample(hr, degrade.kernel_shift(k, 2), 2), 0, 1)
  cfg = zssr.PRESETS["paper"].replace(width=24, depth=5, crop=32, max_iters=600, min_iters=150,
                                      back_projection_iters=2, self_ensemble=False)
  res = zssr.fit(lr, [zssr.Stage(2, k)], cfg, jax.random.key(0))
  assert res.sr01.shape == hr.shape and np.isfinite(res.sr01).all()
  assert all(np.isfinite(h["loss"]) for h in res.history)
  p_zssr = metrics.psnr_y(255 * res.sr01, 255 * hr, 2)
  p_bic = metrics.psnr_y(255 * np.clip(filters.bicubic(lr, 2), 0, 1), 255 * hr, 2)
  assert p_zssr > p_bic + 1.0, (p_zssr, p_bic)


def test_zssr_and_kernelgan_zssr_run_through_the_job_path(tmp_path):
  rec = main.run(None, str(tmp_path / "z"), "tiny", method="zssr", scale=4, progress=False)
  assert [s["sf"] for s in rec["zssr_stages"]] == [2, 4]  # gradual x4 through x2
  assert rec["config"]["zssr"]["width"] == 8 and np.isfinite(rec["scores"]["ikejax"]["psnr_y"])
  rec = main.run(None, str(tmp_path / "zs"), "tiny", method="zssr", scale=2, progress=False,
                 kernel_spec="spectral")  # each image's closed-form blind estimate
  assert rec["kernel"]["source"].startswith("given: spectral estimate (sigmas")
  assert rec["config"]["kernel_from"] == "spectral"
  rec = main.run(None, str(tmp_path / "kz"), "tiny", method="kernelgan+zssr", scale=2,
                 progress=False)
  assert rec["method"] == "kernelgan+zssr" and rec["kernel"]["source"].startswith("KernelGAN")
  assert os.path.isfile(tmp_path / "kz" / "astronaut_x2.png")
  assert os.path.isfile(tmp_path / "kz" / "astronaut_x2_kernel.npy")


@pytest.mark.parametrize("args, needle", [
    (("--method", "kernelgan+zssr", "--kernel", "k.npy"), "estimates its kernel"),
    (("--method", "zssr", "--config", "nope"), "unknown zssr config"),
    (("--method", "zssr", "--set", "zssr.test_every=100"), "lr_slope_range"),
])
def test_bad_zssr_settings_are_one_error_line(args, needle, tmp_path):
  r = cli_runner.run("ikejax.main", *args, "--out", tmp_path, timeout=120)
  assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
