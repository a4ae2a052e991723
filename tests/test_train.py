"""Training: schedules, crop adaptation, one compile for many steps, finiteness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import loop, patches
from ikejax.ike import configs, infer, train


def test_paper_schedules():
  cfg = configs.get_config("paper")
  lam_e, lam_b, lr = (cfg.lambda_energy_schedule(), cfg.lambda_bicubic_schedule(),
                      cfg.lr_schedule())
  np.testing.assert_allclose([lam_e(0), lam_e(1500), lam_e(3000)], [4.0, 2.5, 1.0], rtol=1e-6)
  np.testing.assert_allclose([lam_b(0), lam_b(199), lam_b(200), lam_b(400), lam_b(600),
                              lam_b(2999)], [5, 5, 0.05, 5e-4, 5e-6, 5e-6], rtol=1e-5)
  np.testing.assert_allclose([lr(0), lr(749), lr(750), lr(1500), lr(2250), lr(2999)],
                             [2e-4, 2e-4, 2e-5, 2e-6, 2e-7, 2e-7], rtol=1e-5)


def test_reference_schedules_and_values():
  cfg = configs.get_config("reference")
  lam_e = cfg.lambda_energy_schedule()
  np.testing.assert_allclose([lam_e(0), lam_e(399), lam_e(400), lam_e(2999)], [0, 0, 4, 4])
  assert (cfg.lambda_csr_bwd, cfg.tv_kind, cfg.energy_kind, cfg.resize_kind) == (
      2.0, "squared", "gauss36", "torch")


def test_schedules_scale_with_iters():
  cfg = configs.get_config("fast")
  assert cfg.iters == 600
  np.testing.assert_allclose(cfg.lr_schedule()(150), 2e-5, rtol=1e-5)
  np.testing.assert_allclose(cfg.lambda_bicubic_schedule()(40), 0.05, rtol=1e-5)


def test_config_errors_and_ablations():
  with pytest.raises(ValueError, match="unsupported scale 5"):
    configs.get_config("paper", scale=5)
  with pytest.raises(ValueError, match="unknown config"):
    configs.get_config("best")
  with pytest.raises(ValueError, match="unknown ablation"):
    configs.get_config("paper", ablations=["no_gan"])
  cfg = configs.get_config("paper", ablations=["two_way", "no_residual", "no_energy"])
  assert cfg.coupling == "additive" and not cfg.bicubic_residual
  assert cfg.lambda_energy_schedule()(0) == 0.0


def test_adapt_crop():
  cfg = configs.get_config("paper", scale=4)
  assert train.adapt_crop(cfg, 300, 200) == (cfg, None)
  small, warning = train.adapt_crop(cfg, 50, 61)
  assert small.crop == 48 and "48 px" in warning
  assert train.adapt_crop(cfg, 28, 28)[0].crop == 28
  with pytest.raises(ValueError, match="at least 28x28"):
    train.adapt_crop(cfg, 27, 100)
  assert train.adapt_crop(configs.get_config("paper", scale=3), 500, 500)[0].crop == 126


def _poly(x, *, n):
  return jnp.sum(jnp.stack([x ** i for i in range(n)]), axis=0)


def test_run_once_is_jit_compiled_once_per_shape():
  x = jnp.linspace(-1.0, 1.0, 7)
  hits = loop._compile_run_once.cache_info().hits
  np.testing.assert_allclose(loop.run_once(_poly, x, n=3), 1 + x + x * x, rtol=1e-6)
  np.testing.assert_allclose(loop.run_once(_poly, 2 * x, n=3), 1 + 2 * x + 4 * x * x, rtol=1e-6)
  assert loop._compile_run_once.cache_info().hits == hits + 1
  assert loop.run_once(_poly, x[:3], n=2).shape == (3,)  # another shape: another program.


def _tiny_inputs(scale=2, size=40, seed=0):
  cfg, _ = train.adapt_crop(configs.get_config("tiny", scale=scale, iters=6), size, size)
  rng = np.random.RandomState(seed)
  img = np.clip(np.cumsum(rng.randn(size, size, 3), axis=1) * 0.05, -1, 1).astype(np.float32)
  p_g, p_d = patches.crop_probability_maps((img + 1) / 2, cfg.crop, cfg.crop // scale, scale)
  return cfg, jnp.asarray(img), jnp.asarray(p_g), jnp.asarray(p_d)


def test_step_compiles_once_and_losses_stay_finite():
  cfg, img, p_g, p_d = _tiny_inputs()
  step = train.make_train_step(cfg)
  state = train.create_state(jax.random.key(0), cfg)
  key = jax.random.key(1)
  flow0 = jax.tree_util.tree_map(np.array, state.flow)
  for _ in range(5):
    state, metrics = step(state, img, p_g, p_d, key)
  assert step._cache_size() == 1
  assert int(state.step) == 5 and int(state.bad_step) == -1
  for name, value in metrics.items():
    assert np.isfinite(float(value)), name
  changed = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b), flow0, state.flow)
  assert any(jax.tree_util.tree_leaves(changed))


def test_fit_is_deterministic_and_inference_shapes():
  cfg, img, _, _ = _tiny_inputs(scale=2, size=36)
  a = train.fit(np.asarray(img), cfg, jax.random.key(3))
  b = train.fit(np.asarray(img), cfg, jax.random.key(3))
  c = train.fit(np.asarray(img), cfg, jax.random.key(4))
  assert a.history[-1]["decode"] == b.history[-1]["decode"]
  assert a.history[-1]["decode"] != c.history[-1]["decode"]
  odd = np.asarray(img)[:35, :33]
  sr = infer.super_resolve(a.state, odd, cfg)
  assert sr.shape == (70, 66, 3) and np.all(np.isfinite(sr))
  assert infer.downscale(a.state, odd, cfg).shape == (17, 16, 3)


def test_non_finite_loss_names_the_iteration():
  cfg, img, _, _ = _tiny_inputs(scale=2, size=36)  # the fit test's shapes: no new compile.
  bad = np.asarray(img).copy()
  bad[:] = np.nan
  with pytest.raises(loop.NonFiniteLossError, match="iteration 1"):
    train.fit(bad, cfg, jax.random.key(0))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_crops_of_son_presets_stay_squeezable_on_small_images(scale):
  """A 114x172 LR (Set5 woman at x2) gave the default recipe 114 px crops, whose 57 px sons
  the Haar squeeze cannot take; crops of presets that train on sons are multiples of s*s."""
  cfg, warning = train.adapt_crop(configs.DEFAULT.replace(scale=scale), 114, 172)
  assert cfg.crop % (scale * scale) == 0 and cfg.crop <= 114 and "114" in warning
  assert train.adapt_crop(configs.TINY.replace(scale=scale), 40, 40)[0].crop % scale == 0
  with pytest.raises(ValueError, match=f"multiple of {scale * scale} px"):
    train.adapt_crop(configs.DEFAULT.replace(scale=scale), 7 * scale, 200)
