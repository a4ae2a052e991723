"""The pieces beyond the paper: reference filters, Haar decode, son/father step, kernel prior."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ikejax import patches
from ikejax.ike import configs, kernel, train
from ikejax.imaging import filters, kernels
from ikejax.ike.model import build_model, init_variables
import cli_runner

# The son/father recipe on tiny nets (one compile for the step tests below).
SELF_TINY = configs.get_config(
    "tiny", squeeze="haar", u_input="image", lambda_rec=1.0, lambda_csr_bwd=0.0,
    lambda_tv=0.0, lambda_inter=0.0, decode_trains_flow=False, ema_decay=0.9, augment=True,
    lambda_kernel=1.0)


def _image(h, w, seed=0):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 2.5 + c) * np.cos(y / 3.5) for c in range(3)], -1) * 0.4 + 0.5
  return np.clip(img + 0.03 * rng.randn(h, w, 3), 0, 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sharpen_is_the_haar_decode_at_init(scale):
  """With identity couplings and U = 0, IKE's Haar decode is the `sharpen` filter."""
  cfg = SELF_TINY.replace(scale=scale)
  model = build_model(cfg)
  v = init_variables(model, jax.random.key(0), 8 * scale)
  flow0 = jax.tree_util.tree_map(jnp.zeros_like, v["flow"])  # every subnet outputs 0
  lr01 = _image(8 * scale, 6 * scale)
  sr = model.super_resolve(flow0, v["up"], jnp.asarray(2 * lr01 - 1, jnp.float32))
  np.testing.assert_allclose((np.asarray(sr) + 1) / 2, filters.sharpen(lr01, scale), atol=2e-5)
  # space-to-depth puts the LR slot at one sub-pixel instead: not the filter.
  s2d = build_model(cfg.replace(squeeze="space2depth"))
  sr2 = s2d.super_resolve(flow0, v["up"], jnp.asarray(2 * lr01 - 1, jnp.float32))
  assert np.max(np.abs((np.asarray(sr2) + 1) / 2 - filters.sharpen(lr01, scale))) > 1e-2


def test_filters_shapes_constants_and_kernel():
  for s in (2, 3, 4):
    lr = _image(13, 10)
    for f in filters.FILTERS.values():
      assert f(lr, s).shape == (13 * s, 10 * s, 3)
      np.testing.assert_allclose(f(np.full((9, 8, 1), 0.3), s), 0.3, atol=1e-12)
    k = filters.bicubic_kernel(s, kernels.DEFAULT_SIZE[s])
    np.testing.assert_allclose(k.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(kernels.moments(k)["centre"],
                               [k.shape[0] // 2 + (s - 1) / 2] * 2, atol=1e-9)


def test_downscale_kernel_is_the_impulse_response():
  cfg = SELF_TINY
  state = train.create_state(jax.random.key(1), cfg)
  side = kernel.probe_side(cfg)
  k = build_model(cfg).downscale_kernel(state.flow, side)
  full, _ = kernel.impulse_response(state.flow, cfg, side)
  np.testing.assert_allclose(k, full, atol=1e-7)


def test_son_father_step_trains_u_only_and_keeps_an_ema():
  size = 40
  cfg, _ = train.adapt_crop(SELF_TINY, size, size)
  img01 = _image(size, size)
  p_g, p_d = patches.crop_samplers(img01, cfg.crop, cfg.crop // cfg.scale, cfg.scale)
  state = train.create_state(jax.random.key(0), cfg)
  state0 = jax.tree_util.tree_map(np.array, state)  # the step donates its input buffers
  step = train.make_train_step(cfg)
  for _ in range(4):
    state, m = step(state, jnp.asarray(2 * img01 - 1, jnp.float32), p_g, p_d, jax.random.key(2))
  assert int(state.bad_step) == -1
  assert all(np.isfinite(float(v)) for v in m.values())
  assert float(m["rec"]) > 0 and float(m["kernel"]) >= 0 and float(m["d_hr"]) == 0
  leaves = lambda t: jax.tree_util.tree_leaves(t)
  changed = lambda a, b: any(not np.allclose(x, y) for x, y in zip(leaves(a), leaves(b)))
  assert changed(state.up, state0.up) and changed(state.flow, state0.flow)
  assert not changed(state.d_hr, state0.d_hr)       # PD2 has no weight: never stepped
  assert changed(state.ema["up"], state.up)          # the average lags the parameters


def test_dihedral_draws_all_eight():
  x = jnp.arange(9.0).reshape(3, 3, 1)
  seen = {tuple(np.asarray(train.dihedral(jax.random.key(i), x)).ravel()) for i in range(64)}
  assert len(seen) == 8


def test_sharpen_method_cli(tmp_path):
  hr = (255 * _image(48, 40)).round().astype(np.uint8)
  Image.fromarray(hr[::2, ::2]).save(tmp_path / "lr.png")
  Image.fromarray(hr).save(tmp_path / "hr.png")
  run = lambda *a: cli_runner.run("ikejax.main", *a)
  r = run("--method", "sharpen", "--image", str(tmp_path / "lr.png"), "--hr",
          str(tmp_path / "hr.png"), "--out", str(tmp_path / "out"), "--noprogress")
  assert r.returncode == 0, r.stderr
  rec = json.loads((tmp_path / "out" / "lr_x2.json").read_text())
  assert rec["method"] == "sharpen" and rec["output_shape"] == [48, 40, 3]
  assert set(rec["scores"]) == {"ikejax", "bicubic"}
  r = run("--method", "bicubic", "--iters", "3", "--out", str(tmp_path / "o2"))
  assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error:")


def test_correlate_subsample_is_the_kernel_operator():
  rng = np.random.RandomState(3)
  x, k = rng.rand(17, 14, 3), rng.rand(7, 7)
  from ikejax import ops
  got = ops.correlate_subsample(jnp.asarray(x, jnp.float32), jnp.asarray(k, jnp.float32), 2)
  np.testing.assert_allclose(got, kernels.apply_kernel(x, k, 2), atol=1e-5)


def test_given_kernel_step_trains_u_alone():
  size = 40
  cfg, _ = train.adapt_crop(SELF_TINY, size, size)
  img01 = _image(size, size, seed=1)
  p_g, p_d = patches.crop_samplers(img01, cfg.crop, cfg.crop // cfg.scale, cfg.scale)
  state = train.create_state(jax.random.key(0), cfg)
  state0 = jax.tree_util.tree_map(np.array, state)
  k = jnp.asarray(np.outer([1, 2, 1], [1, 2, 1]) / 16.0, jnp.float32)
  step = train.make_train_step(cfg)
  for _ in range(3):
    state, m = step(state, jnp.asarray(2 * img01 - 1, jnp.float32), p_g, p_d,
                    jax.random.key(2), k)
  leaves = lambda t: jax.tree_util.tree_leaves(t)
  same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))
  assert same(state.flow, state0.flow) and same(state.d_lr, state0.d_lr)  # nothing to learn
  assert not same(state.up, state0.up) and float(m["rec"]) > 0
  assert float(m["csr_fwd"]) == 0 and int(state.bad_step) == -1


# The default recipe with the tiny preset's network sizes: its path, a fraction of the compile.
SMALL = [f"--set={f}" for f in ("blocks_per_level=1", "growth=4", "u_width=8", "u_depth=2",
                                "d_width=8", "crop=32")]


def test_kernel_cli_needs_a_son_preset(tmp_path):
  hr = (255 * _image(64, 64)).round().astype(np.uint8)
  Image.fromarray(hr[::2, ::2]).save(tmp_path / "lr.png")
  np.save(tmp_path / "k.npy", np.outer([1, 2, 1], [1, 2, 1]) / 16.0)
  run = lambda *a: cli_runner.run("ikejax.main", "--image", tmp_path / "lr.png", "--kernel",
                                  tmp_path / "k.npy", "--noprogress", *a)
  r = run("--config", "paper", "--out", str(tmp_path / "a"))
  assert r.returncode == 2 and "--config default" in r.stderr.strip().splitlines()[-1]
  r = run("--config", "default", "--iters", "2", *SMALL, "--out", str(tmp_path / "b"))
  assert r.returncode == 0, r.stderr
  rec = json.loads((tmp_path / "b" / "lr_x2.json").read_text())
  assert rec["kernel"]["source"].endswith("k.npy") and rec["output_shape"] == [64, 64, 3]


def test_default_recipe_folder_run_makes_sons_with_each_images_estimate(tmp_path):
  lr_dir = tmp_path / "lr"
  lr_dir.mkdir()
  for i in range(2):
    Image.fromarray((255 * _image(48, 48, seed=i)).round().astype(np.uint8)).save(
        lr_dir / f"im_{i}.png")
  r = cli_runner.run("ikejax.main", "--config", "default", "--iters", "2", *SMALL,
                     "--images", lr_dir, "--out", tmp_path / "o", "--batch", "2", "--noprogress")
  assert r.returncode == 0, r.stderr
  for i in range(2):
    rec = json.loads((tmp_path / "o" / f"im_{i}_x2.json").read_text())
    # Noise keeps these synthetic images' high band flat: where it does, the resampler.
    aliased = rec["kernel"]["floor"] > rec["config"]["alias_floor"]
    assert rec["kernel"]["source"].startswith("bicubic resampler" if aliased else "spectral")
    assert rec["config"]["son_source"] == "spectral" and len(rec["kernel"]["sigmas"]) == 2


def test_lr_warmup_schedule():
  cfg = configs.get_config("default")
  lr = cfg.lr_schedule()
  warm = round(cfg.iters * cfg.lr_warmup)
  assert float(lr(0)) == 0.0
  np.testing.assert_allclose(float(lr(warm // 2)), cfg.lr / 2, rtol=1e-5)
  np.testing.assert_allclose([float(lr(warm)), float(lr(cfg.iters - 1))], cfg.lr, rtol=1e-6)
  np.testing.assert_allclose(float(configs.get_config("paper").lr_schedule()(0)), configs.PAPER.lr,
                             rtol=1e-6)  # no warm-up there
