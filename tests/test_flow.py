"""Round-trip property tests of the couplings and the whole flow (float32, 1e-5)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from ikejax.flow import AdditiveCoupling, IKEFlow, TriChannelCoupling

ATOL = 1e-5


def _perturb(params, key, scale=0.1):
  """Moves every parameter off its init, so that no identity init hides a bug."""
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree_util.tree_unflatten(
      tree, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def _init(module, x, key=0, method="forward"):
  params = module.init(jax.random.key(key), x, method=getattr(type(module), method))["params"]
  return _perturb(params, jax.random.key(key + 1))


class CouplingTest(chex.TestCase, parameterized.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters((TriChannelCoupling, 3, True), (TriChannelCoupling, 16, False),
                            (AdditiveCoupling, 4, True), (AdditiveCoupling, 9, False))
  def test_round_trip(self, cls, channels, linear):
    block = cls(channels, growth=4, linear=linear)
    x = jax.random.normal(jax.random.key(2), (3, 6, 5, channels))
    params = _init(block, x)
    fwd = self.variant(lambda p, v: block.apply({"params": p}, v, method=cls.forward))
    inv = self.variant(lambda p, v: block.apply({"params": p}, v, method=cls.inverse))
    y = fwd(params, x)
    assert float(jnp.max(jnp.abs(y - x))) > 1e-2  # The block really transforms x.
    chex.assert_trees_all_close(inv(params, y), x, atol=ATOL)
    chex.assert_trees_all_close(fwd(params, inv(params, x)), x, atol=ATOL)

  def test_reference_inverse_is_not_exact(self):
    block = TriChannelCoupling(4, growth=4)
    x = jax.random.normal(jax.random.key(3), (1, 8, 8, 4))
    params = _init(block, x)
    y = block.apply({"params": params}, x, method=TriChannelCoupling.forward)
    x_ref = block.apply({"params": params}, y, method=TriChannelCoupling.inverse_reference)
    err = float(jnp.max(jnp.abs(x_ref - x)))
    assert err > 1e-3, err
    # The error is exactly -sigma(rho(x_res)) on x_b (reference.md 1.3), before phi.
    bound = block.bind({"params": params})
    a = x[..., :1] + bound.phi(x[..., 1:-1])
    delta = bound.sigma(a + bound.rho(x[..., -1:])) - bound.sigma(a)
    np.testing.assert_allclose(x_ref[..., 1:-1], x[..., 1:-1] - delta, atol=ATOL)

  def test_tri_channel_split(self):
    """x_res (last channel) passes through; phi/sigma/rho have the documented shapes."""
    block = TriChannelCoupling(9, growth=4)
    x = jax.random.normal(jax.random.key(4), (1, 4, 4, 9))
    params = _init(block, x)
    y = block.apply({"params": params}, x, method=TriChannelCoupling.forward)
    np.testing.assert_array_equal(y[..., -1], x[..., -1])
    assert params["phi"]["conv1"]["kernel"].shape == (3, 3, 7, 4)
    assert params["sigma"]["conv5"]["kernel"].shape == (3, 3, 1 + 4 * 4, 7)
    assert params["rho"]["conv1"]["kernel"].shape == (3, 3, 1, 4)


class FlowTest(chex.TestCase, parameterized.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters((2, "tri"), (3, "tri"), (4, "tri"), (4, "additive"))
  def test_flow_round_trip(self, scale, coupling):
    flow = IKEFlow(scale=scale, blocks_per_level=2, coupling=coupling, growth=4)
    hw = 2 * scale * (2 if scale == 4 else 1)
    x = jax.random.normal(jax.random.key(5), (3, hw, hw + scale * 2, 1))
    params = _init(flow, x)
    fwd = self.variant(lambda p, v: flow.apply({"params": p}, v, method=IKEFlow.forward))
    inv = self.variant(lambda p, v: flow.apply({"params": p}, v, method=IKEFlow.inverse))
    y = fwd(params, x)
    assert y.shape == (3, hw // scale, (hw + 2 * scale) // scale, scale * scale)
    chex.assert_trees_all_close(inv(params, y), x, atol=ATOL)
    z = jax.random.normal(jax.random.key(6), y.shape)
    chex.assert_trees_all_close(fwd(params, inv(params, z)), z, atol=ATOL)

  def test_reference_inverse_flow_is_not_exact(self):
    x = jax.random.normal(jax.random.key(7), (3, 8, 8, 1))
    exact = IKEFlow(scale=2, blocks_per_level=2, growth=4)
    params = _init(exact, x)
    y = exact.apply({"params": params}, x, method=IKEFlow.forward)
    ref = IKEFlow(scale=2, blocks_per_level=2, growth=4, reference_inverse=True)
    x_ref = ref.apply({"params": params}, y, method=IKEFlow.inverse)
    assert float(jnp.max(jnp.abs(x_ref - x))) > 1e-3

  def test_levels_and_parameter_count(self):
    """x4 = two s=2 levels (4 then 16 channels); x3 = one s=3 level (9 channels)."""
    for scale, channels in ((2, [4]), (3, [9]), (4, [4, 16])):
      flow = IKEFlow(scale=scale, blocks_per_level=4)
      x = jnp.zeros((1, 12, 12, 1))
      params = flow.init(jax.random.key(0), x, method=IKEFlow.forward)["params"]
      sigmas = [params[f"blocks_{i}"]["sigma"]["conv5"]["kernel"].shape[-1]
                for i in range(4 * len(channels))]
      assert sigmas == [c - 2 for c in channels for _ in range(4)]

  def test_unsupported_scale(self):
    with pytest.raises(ValueError, match="unsupported scale 5"):
      IKEFlow(scale=5).init(jax.random.key(0), jnp.zeros((1, 10, 10, 1)), method=IKEFlow.forward)


def test_linear_subnet_is_affine():
  """With linear subnets the flow is affine: f(a x + b y) - f(0) is linear."""
  flow = IKEFlow(scale=2, blocks_per_level=1, growth=4)
  x = jax.random.normal(jax.random.key(8), (1, 8, 8, 1))
  y = jax.random.normal(jax.random.key(9), (1, 8, 8, 1))
  params = _init(flow, x)
  f = lambda v: flow.apply({"params": params}, v, method=IKEFlow.forward)
  f0 = f(jnp.zeros_like(x))
  np.testing.assert_allclose(f(2 * x + 3 * y) - f0, 2 * (f(x) - f0) + 3 * (f(y) - f0),
                             atol=1e-4)
