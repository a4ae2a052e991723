"""Batched zero-shot jobs: same trajectory as single runs, isolation, sharding."""

import os
import subprocess
import sys
import textwrap
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ikejax import patches
from ikejax.ike import configs, train
from ikejax.runs import batch

CFG = configs.get_config("tiny", scale=2, iters=4).replace(log_every=2)


def _image(h, w, seed):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 3.0 + c) * np.cos(y / 4.0) for c in range(3)], -1) * 0.7
  return (img + rng.randn(h, w, 3) * 0.03).astype(np.float32)


IMAGES = [_image(40, 48, 0), _image(50, 36, 1)]


def _rel_diff(a, b):
  """||a - b|| / ||b|| over all leaves of two parameter trees.

  Float noise (vmapped grouped convs sum in another order) reaches ~1e-4 after
  a few Adam steps, which rescale tiny gradients to full-size updates; a run
  from another key differs by ~1, one with other crops by far more than 1e-3.
  """
  flat = lambda t: np.concatenate(
      [np.ravel(x) for x in jax.device_get(jax.tree_util.tree_leaves(t))])
  fa, fb = flat(a), flat(b)
  return float(np.linalg.norm(fa - fb) / np.linalg.norm(fb))


@pytest.fixture(scope="module")
def singles():
  return [train.fit(x, CFG, jax.random.key(3)) for x in IMAGES]


def test_padded_sampler_draws_the_same_crops():
  img01 = (IMAGES[1] + 1) / 2
  p_g, _ = patches.crop_samplers(img01, 32, 16, 2)
  padded = batch.pad_sampler(p_g, 64, 70)
  for k in jax.random.split(jax.random.key(0), 50):
    np.testing.assert_array_equal(patches.sample_top_left(k, p_g, 32, 2),
                                  patches.sample_top_left(k, padded, 32, 2))


def test_image_i_of_a_batch_equals_its_single_run(singles):
  res = batch.fit_batch(IMAGES, CFG, [jax.random.key(3)] * 2)
  assert res.bad_steps == [-1, -1]
  for i, single in enumerate(singles):
    got = batch.take(res.state, i)
    for name in ("flow", "up", "d_lr", "d_hr"):
      assert _rel_diff(getattr(got, name), getattr(single.state, name)) < 1e-3, name
    assert len(res.histories[i]) == len(single.history) == 2
    for a, b in zip(res.histories[i], single.history):
      for k in ("csr_fwd", "energy", "csr_bwd", "inter", "d_lr", "d_hr"):
        assert a[k] == pytest.approx(b[k], abs=1e-4), k


def test_a_nan_image_fails_alone(singles):
  poisoned = IMAGES[1].copy()
  poisoned[10:20, 10:20] = np.nan
  res = batch.fit_batch([IMAGES[0], poisoned], CFG, [jax.random.key(3)] * 2)
  assert res.bad_steps[0] == -1 and res.bad_steps[1] >= 0
  assert _rel_diff(batch.take(res.state, 0).flow, singles[0].state.flow) < 1e-3
  # The failed job keeps its last finite networks.
  kept = batch.take(res.state, 1)
  assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree_util.tree_leaves(kept.flow))


def test_fit_batch_needs_a_key_per_image():
  with pytest.raises(ValueError, match="one key per image"):
    batch.fit_batch(IMAGES, CFG, [jax.random.key(0)])


def test_slots_are_a_multiple_of_the_devices_used():
  devs = ["d0", "d1", "d2", "d3"]
  assert batch.slots_for(1, devs) == (1, ["d0"])
  assert batch.slots_for(3, devs) == (3, devs[:3])
  assert batch.slots_for(6, devs) == (8, devs)


def test_the_default_batch_fills_every_accelerator_and_is_one_on_cpu():
  gpu = [types.SimpleNamespace(platform="gpu")] * 8
  assert batch.default_batch_size(gpu) == 8
  assert batch.default_batch_size([types.SimpleNamespace(platform="cpu")] * 2) == 1
  if jax.default_backend() == "cpu":
    assert batch.default_batch_size() == 1  # unchanged results on CPU


SCRIPT = textwrap.dedent("""
  import jax, numpy as np
  from ikejax.ike import configs
  from ikejax.runs import batch
  from tests.test_batch import IMAGES, CFG, _rel_diff
  assert len(jax.devices()) == 2, jax.devices()
  keys = [jax.random.key(3)] * 2
  two = batch.fit_batch(IMAGES, CFG, keys)
  assert len(jax.tree_util.tree_leaves(two.state.flow)[0].sharding.device_set) == 2
  one = batch.fit_batch(IMAGES, CFG, keys, devices=jax.devices()[:1])
  assert len(jax.tree_util.tree_leaves(one.state.flow)[0].sharding.device_set) == 1
  print("DIFF", *[_rel_diff(getattr(two.state, n), getattr(one.state, n))
                  for n in ("flow", "up", "d_lr", "d_hr")])
""")


def test_two_devices_give_the_results_of_one():
  """A batch sharded over two (host) devices trains as on one."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                     cwd=root, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  diffs = [float(v) for v in r.stdout.split("DIFF")[1].split()]
  assert max(diffs) < 1e-3, diffs
