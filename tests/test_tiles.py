"""Tiled whole-image inference (`ikejax.tiles`): tiled equals untiled, seams included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import tiles
from ikejax.baselines import dualsr, zssr
from ikejax.ike import configs, infer, train

GREY = 1.0 / 255.0  # one grey level of [0, 1]


def _image(h, w, seed=0):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 3.0 + c) * np.cos(y / 4.0) for c in range(3)], -1) * 0.4 + 0.5
  return np.clip(img + rng.randn(h, w, 3) * 0.03, 0, 1).astype(np.float32)


def _perturbed(tree, key, scale=0.2):
  """Parameters moved off their init, so that every network's output is far from trivial."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return jax.tree_util.tree_unflatten(treedef, [
      p + scale * (jnp.std(p) + 1e-2) * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


@pytest.mark.parametrize("n, tile, overlap, align", [(100, 32, 8, 1), (99, 30, 10, 3),
                                                     (32, 32, 8, 1), (65, 64, 4, 2)])
def test_starts_cover_overlap_and_align(n, tile, overlap, align):
  n = n // align * align
  s = tiles.starts(n, tile, overlap, align)
  assert s[0] == 0 and s[-1] + tile >= n and all(v % align == 0 for v in s)
  assert all(b - a <= tile - overlap for a, b in zip(s, s[1:]))


def test_a_local_filter_is_exact_with_an_overlap_over_its_reach():
  x = _image(37, 53)

  def fn(t):  # 5x5 box blur (reach 2 px, edge-replicated) then nearest x2
    p = np.pad(t, ((2, 2), (2, 2), (0, 0)), mode="edge")
    b = sum(p[i:i + t.shape[0], j:j + t.shape[1]] for i in range(5) for j in range(5)) / 25
    return np.repeat(np.repeat(b, 2, 0), 2, 1)

  whole = fn(x)
  tiled = tiles.map_tiles(fn, x, 2, tile=16, overlap=6)  # a third: 2 px, the reach
  assert tiled.shape == whole.shape
  # Only the image border sees the edge padding of its own tile, as whole does.
  np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_choose_tile_by_size_and_setting():
  assert tiles.choose_tile(None, 1000, 700, "cpu") is None  # small: whole
  assert tiles.choose_tile(None, 3000, 4000, "cpu") == 512
  assert tiles.choose_tile(None, 3000, 4000, "gpu") == 1024
  assert tiles.choose_tile(0, 3000, 4000, "cpu") is None
  assert tiles.choose_tile(200, 10, 10, "cpu") == 200
  with pytest.raises(ValueError, match="--tile"):
    tiles.choose_tile(-1, 10, 10, "cpu")


@pytest.mark.parametrize("scale", [2, 4])
def test_ike_tiled_equals_untiled(scale):
  cfg = configs.get_config("tiny", scale=scale)
  state = train.create_state(jax.random.key(0), cfg)
  state = state.replace(ema=_perturbed(state.ema, jax.random.key(1)))
  x = 2.0 * _image(58, 75) - 1.0
  for fn in (infer.super_resolve, infer.downscale):
    whole = fn(state, x, cfg)
    tiled = fn(state, x, cfg, tile=32, overlap=16)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() / 2 < GREY, (fn.__name__, np.abs(tiled - whole).max())


def test_zssr_tiled_equals_untiled():
  cfg = zssr.PRESETS["tiny"].replace(self_ensemble=True)
  params = _perturbed(zssr.create_state(jax.random.key(0), cfg).params, jax.random.key(2), 1.0)
  x = _image(81, 90)
  kernel = jnp.asarray(zssr.son_kernel(None, 2), jnp.float32)
  whole = zssr.final_sr(params, x, kernel, cfg, 2)
  tiled = zssr.final_sr(params, x, kernel, cfg, 2, tile=48)  # 3 x 3 tiles, overlap 32
  assert tiled.shape == whole.shape == (162, 180, 3)
  assert np.abs(tiled - whole).max() < GREY, np.abs(tiled - whole).max()


def test_dualsr_tiled_equals_untiled():
  cfg = dualsr.PRESETS["tiny"]
  state = dualsr.create_state(jax.random.key(0), cfg)
  up = _perturbed(state.up, jax.random.key(3), 1.0)
  x = _image(95, 70)
  whole = dualsr.super_resolve(up, x, cfg)
  tiled = dualsr.super_resolve(up, x, cfg, tile=48)
  assert tiled.shape == whole.shape == (190, 140, 3)
  assert np.abs(tiled - whole).max() < GREY


def test_cli_tile_flag(tmp_path):
  import cli_runner
  r = cli_runner.run("ikejax.main", "--tile", "10", "--out", tmp_path)
  assert r.returncode == 2 and r.stderr.strip() == (
      "error: --tile must be 0 (whole image) or at least 64, got 10"), r.stderr
  r = cli_runner.run("ikejax.main", "--method", "sharpen", "--tile", "64", "--out", tmp_path,
                     "--noprogress")
  assert r.returncode == 0, r.stderr
