"""Internal validation: held-out crops, the reconstruction PSNR, keep-best and restarts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import patches
from ikejax.ike import configs, train, validation
from ikejax.imaging import degrade
from ikejax.runs import batch
from test_batch import _image  # the same smooth test pattern

CFG = configs.get_config("tiny", scale=2, iters=4).replace(
    log_every=2, val_crops=2, val_crop=16, val_every=2, son_source="spectral", lambda_rec=1.0,
    u_input="image", squeeze="haar", decode_trains_flow=False)


IMAGES = [_image(96, 112, 0), _image(100, 90, 1)]
KERNEL = degrade.gaussian_kernel(7, (1.0, 1.0), 0.0)


def test_no_training_crop_overlaps_a_held_out_window():
  img, window, crop = _image(160, 176, 2), 16, 32
  p_g, p_d = patches.crop_probability_maps((img + 1) / 2, crop, crop // 2, 2)
  corners, g, d = validation.holdout(p_g, p_d, window, crop, crop // 2, 2, 3)
  assert len(corners) >= 2 and abs(g.sum() - 1) < 1e-5 and abs(d.sum() - 1) < 1e-5
  for a in range(len(corners)):  # windows are disjoint
    for b in range(a):
      assert np.any(np.abs(corners[a] - corners[b]) >= window)
  overlaps = lambda tl, size, w: np.all((tl < w + window) & (w < tl + size))
  keys = jax.random.split(jax.random.key(0), 2000)
  draw = lambda prob, size: np.asarray(jax.vmap(
      lambda k: patches.sample_top_left(k, patches.centre_sampler(prob), size, 2))(keys))
  for prob, size in ((g, crop), (d, crop // 2)):
    assert not any(overlaps(tl, size, w) for tl in draw(prob, size) for w in corners)
  # Without holding out, training crops would land on the windows.
  assert any(overlaps(tl, crop, w) for tl in draw(p_g, crop) for w in corners)


def test_a_small_image_validates_on_its_most_textured_window():
  img = np.zeros((40, 40, 3), np.float32)
  img[20:36, 18:34] = IMAGES[0][:16, :16]  # texture only here, away from the corner
  cfg = CFG.replace(crop=32)
  p_g, p_d = patches.crop_probability_maps((img + 1) / 2, 32, 16, 2)
  vset, g, d = validation.prepare(img, p_g, p_d, cfg)
  assert not bool(vset.held_out) and vset.fathers.shape == (2, 16, 16, 3)
  np.testing.assert_array_equal(np.asarray(vset.weights), [1, 0])
  np.testing.assert_array_equal(g, p_g)
  assert float(np.std(np.asarray(vset.fathers[0]))) > 0.1  # not a flat corner


def test_padding_repeats_do_not_count():
  cfg = CFG.replace(crop=32)
  state = train.create_state(jax.random.key(0), cfg)
  validate = train.make_validate(cfg)
  father = jnp.asarray(IMAGES[0][:32, :32])
  other = jnp.asarray(IMAGES[1][:32, :32])
  k = jnp.asarray(KERNEL, jnp.float32)
  psnr = lambda fathers, w: float(validate(
      state.ema, validation.ValidationSet(fathers, jnp.asarray(w, jnp.float32),
                                          jnp.asarray(True)), k))
  both = jnp.stack([father, other])
  alone = psnr(jnp.stack([father, father]), [1.0, 1.0])
  assert np.isfinite(alone)
  assert psnr(both, [1.0, 0.0]) == pytest.approx(alone, abs=1e-4)
  assert psnr(both, [1.0, 1.0]) != pytest.approx(alone, abs=1e-3)


KEY = jax.random.key(1)
RESTART = CFG.replace(keep_best=True, restarts=1, stuck_gain_db=1e3)  # every run is stuck


@pytest.fixture(scope="module")
def fits():
  """The same image: one run, a run from the second attempt's key, and a run restarted."""
  return {"once": train.fit(IMAGES[0], CFG.replace(keep_best=True), KEY, son_kernel=KERNEL),
          "second": train.fit(IMAGES[0], CFG, jax.random.fold_in(KEY, 1), son_kernel=KERNEL),
          "restarted": train.fit(IMAGES[0], RESTART, KEY, son_kernel=KERNEL)}


def test_fit_records_validation_and_keeps_the_best(fits):
  res = fits["once"]
  v = res.validation
  assert [c[0] for c in v["curve"]] == [0, 2, 4] and v["held_out"] and v["kept"] == "best"
  best = max(c[1] for c in v["curve"])
  assert v["best_db"] == best and v["best_iteration"] == max(v["curve"], key=lambda c: c[1])[0]
  assert [h["val_psnr"] for h in res.history] == [c[1] for c in v["curve"][1:]]
  p_g, p_d, vset = train.training_maps(IMAGES[0], CFG)
  got = float(train.make_validate(CFG)(res.state.ema, vset, jnp.asarray(KERNEL, jnp.float32)))
  assert got == pytest.approx(best, abs=1e-3)


def test_a_stuck_run_is_run_again_and_the_better_attempt_kept(fits):
  tried = fits["restarted"].validation["attempts"]
  assert len(tried) == 2
  assert tried[0]["best_db"] == pytest.approx(fits["once"].validation["best_db"], abs=1e-4)
  assert tried[1]["best_db"] == pytest.approx(fits["second"].validation["best_db"], abs=1e-4)
  assert fits["restarted"].validation["best_db"] == max(t["best_db"] for t in tried)
  assert validation.stuck(20.0, 20.2, CFG) and not validation.stuck(20.0, 20.5, CFG)


def test_batch_validation_and_restarts_follow_the_single_runs(fits):
  res = batch.fit_batch(IMAGES, RESTART, [KEY, jax.random.key(4)], son_kernels=[KERNEL] * 2)
  got, want = res.validations[0], fits["restarted"].validation
  assert len(got["attempts"]) == 2 and len(res.validations[1]["attempts"]) == 2
  np.testing.assert_allclose([t["best_db"] for t in got["attempts"]],
                             [t["best_db"] for t in want["attempts"]], atol=1e-3)
  np.testing.assert_allclose(np.asarray(got["curve"]), np.asarray(want["curve"]), atol=1e-3)


def test_config_refuses_keep_best_without_crops():
  with pytest.raises(ValueError, match="validation crops"):
    configs.get_config("tiny").replace(keep_best=True).validate()
  with pytest.raises(ValueError, match="val_every"):
    configs.get_config("tiny").replace(val_every=0).validate()


def test_windows_follow_the_scale():
  # Windows are multiples of s*s: their sons (window / s) pass the decoder's squeeze.
  cfg = CFG.replace(scale=3, crop=48, val_crop=20)
  p_g, p_d = patches.crop_probability_maps((IMAGES[0] + 1) / 2, 48, 16, 3)
  vset, _, _ = validation.prepare(IMAGES[0], p_g, p_d, cfg)
  assert vset.fathers.shape[1:] == (18, 18, 3)
