"""Networks (U, patch discriminator) and the wired model: shapes, init, ranges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax import linen as nn

from ikejax.ike import configs
from ikejax.ike.model import build_model, init_variables
from ikejax.ike.networks import ZUpscaler
from ikejax.nets import PatchDiscriminator


def test_discriminator_map_shape_and_range():
  d = PatchDiscriminator(width=8)
  x = jax.random.normal(jax.random.key(0), (1, 32, 40, 3))
  v = d.init(jax.random.key(1), x, update_stats=True)
  out, new = d.apply(v, x, update_stats=True, mutable=["batch_stats"])
  assert out.shape == (1, 26, 34, 1)
  assert float(out.min()) > 0 and float(out.max()) < 1
  # Spectral norm keeps a power-iteration vector that moves with update_stats.
  u_old = jax.tree_util.tree_leaves(v["batch_stats"])
  u_new = jax.tree_util.tree_leaves(new["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(u_old, u_new))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_model_shapes(scale):
  cfg = configs.get_config("tiny", scale=scale, crop=12 * scale)
  model = build_model(cfg)
  v = init_variables(model, jax.random.key(0), cfg.crop)
  x = jax.random.uniform(jax.random.key(1), (12 * scale, 12 * scale, 3), minval=-1, maxval=1)
  llr, z = model.encode(v["flow"], x)
  assert llr.shape == (12, 12, 3)
  assert z.shape == (12, 12, 3 * (scale * scale - 1))
  z_up = model.upscale_z(v["up"], z)
  assert z_up.shape == (12 * scale, 12 * scale, z.shape[-1])
  sr = model.decode(v["flow"], x, z_up)
  assert sr.shape == (12 * scale * scale, 12 * scale * scale, 3)


def test_z_upscaler_shape():
  u = ZUpscaler(scale=2, width=8, depth=3)
  z = jnp.zeros((5, 6, 9))
  v = u.init(jax.random.key(0), z)
  assert u.apply(v, z).shape == (10, 12, 9)


def test_z_upscaler_init_schemes():
  """'he' starts at U(Z) = 0 but trains; the official init's output vanishes."""
  z = 0.02 * jax.random.normal(jax.random.key(0), (16, 16, 9))
  he, ref = ZUpscaler(scale=2), ZUpscaler(scale=2, init_scheme="reference")
  v_he, v_ref = he.init(jax.random.key(1), z), ref.init(jax.random.key(1), z)
  assert float(jnp.max(jnp.abs(he.apply(v_he, z)))) == 0.0
  assert float(jnp.max(jnp.abs(ref.apply(v_ref, z)))) < 1e-8
  loss = lambda m: lambda v: jnp.sum((m.apply(v, z) - 0.1) ** 2)
  g_he = jax.grad(loss(he))(v_he)["params"]["conv7"]["kernel"]
  g_ref = jax.grad(loss(ref))(v_ref)["params"]["conv0"]["kernel"]
  assert float(jnp.max(jnp.abs(g_he))) > 1e-3
  assert float(jnp.max(jnp.abs(g_ref))) < 1e-8   # Below Adam's epsilon: U never moves.
  with pytest.raises(ValueError, match="unknown U init"):
    ZUpscaler(scale=2, init_scheme="lecun").init(jax.random.key(0), z)


def test_sample_batchnorm_is_flax_batchnorm_per_image():
  from ikejax.nets import SampleBatchNorm
  x = jax.random.normal(jax.random.key(2), (3, 9, 11, 5)) * 3 + 1
  ours = SampleBatchNorm()
  v = ours.init(jax.random.key(3), x)
  ref = nn.BatchNorm(use_running_average=False, epsilon=1e-5)
  batched = ours.apply(v, x)
  for i in range(3):
    expect, _ = ref.apply({"params": v["params"],
                           "batch_stats": {"mean": jnp.zeros(5), "var": jnp.ones(5)}},
                          x[i:i + 1], mutable=["batch_stats"])
    np.testing.assert_allclose(batched[i:i + 1], expect, atol=2e-5)


def test_discriminator_batched_call_equals_separate_calls_and_stems_agree():
  x = jax.random.normal(jax.random.key(4), (3, 20, 24, 3))
  fast, direct = PatchDiscriminator(width=8), PatchDiscriminator(width=8, banded_stem=False)
  v = fast.init(jax.random.key(5), x, update_stats=False)
  batched = fast.apply(v, x, update_stats=False)
  for i in range(3):
    alone = direct.apply(v, x[i:i + 1], update_stats=False)
    np.testing.assert_allclose(batched[i:i + 1], alone, atol=1e-5)
