"""Round-trip property tests of the couplings and the whole flow (float32, 1e-5)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from ikejax.ike.flow import (AdditiveCoupling, DenseSubnet, IKEFlow, TriChannelCoupling,
                         squeeze_factors)

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
  @parameterized.parameters((2, "tri", False, "space2depth"), (3, "tri", True, "space2depth"),
                            (4, "tri", False, "space2depth"), (4, "additive", True, "space2depth"),
                            (2, "tri", True, "space2depth"), (2, "tri", True, "haar"),
                            (3, "tri", False, "haar"), (4, "tri", True, "haar"))
  def test_flow_round_trip(self, scale, coupling, composed, squeeze):
    flow = IKEFlow(scale=scale, blocks_per_level=2, coupling=coupling, growth=4,
                   composed=composed, squeeze=squeeze)
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


class ComposedSubnetTest(chex.TestCase, parameterized.TestCase):
  """The fast path (one composed 11x11 conv) equals the layer-by-layer subnet."""

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters((1, 1), (2, 1), (1, 14), (7, 1))
  def test_interior_matches_layers(self, cin, cout):
    x = jax.random.normal(jax.random.key(10), (2, 24, 27, cin))
    layers = DenseSubnet(cout, composed=False)
    fast = DenseSubnet(cout, composed=True)
    params = _init(layers, x, method="__call__")
    f_layers = self.variant(lambda p, v: layers.apply({"params": p}, v))
    f_fast = self.variant(lambda p, v: fast.apply({"params": p}, v))
    a, b = f_layers(params, x), f_fast(params, x)
    # Exact wherever the 11x11 window is inside the input (5 px from the border),
    # to float32 rounding: 1e-5 relative to the output's scale.
    scale = float(jnp.max(jnp.abs(a)))
    err = float(jnp.max(jnp.abs(b[:, 5:-5, 5:-5] - a[:, 5:-5, 5:-5])))
    assert err <= ATOL * max(1.0, scale), (err, scale)
    # Near the border the paths differ (per-layer vs input-only zero padding).
    assert float(jnp.max(jnp.abs(a - b))) > 1e-3

  def test_gradients_match_in_the_interior(self):
    x = jax.random.normal(jax.random.key(11), (1, 26, 26, 2))
    layers, fast = DenseSubnet(1, composed=False), DenseSubnet(1, composed=True)
    params = _init(layers, x, method="__call__")
    loss = lambda m: lambda p: jnp.sum(m.apply({"params": p}, x)[:, 5:-5, 5:-5] ** 2)
    g_layers, g_fast = jax.grad(loss(layers))(params), jax.grad(loss(fast))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_layers)):
      # float32 sums of terms ~1e3: compare relative to each leaf's scale.
      assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * float(jnp.max(jnp.abs(b))) + 1e-6

  def test_nonlinear_subnet_ignores_composed(self):
    x = jax.random.normal(jax.random.key(12), (1, 12, 12, 1))
    a, b = DenseSubnet(1, linear=False), DenseSubnet(1, linear=False, composed=True)
    params = _init(a, x, method="__call__")
    np.testing.assert_array_equal(a.apply({"params": params}, x), b.apply({"params": params}, x))


@pytest.mark.parametrize("scale", [2, 4])
def test_composed_flow_matches_layered_flow_in_the_interior(scale):
  # One block per level: three subnets in a row reach 15 px (LR) per level.
  kw = dict(scale=scale, blocks_per_level=1, growth=4)
  layered, fast = IKEFlow(**kw, composed=False), IKEFlow(**kw, composed=True)
  x = jax.random.normal(jax.random.key(13), (3, 48 * scale, 48 * scale, 1))
  params = _init(layered, x)
  y_l = layered.apply({"params": params}, x, method=IKEFlow.forward)
  y_f = fast.apply({"params": params}, x, method=IKEFlow.forward)
  m = 15 * len(squeeze_factors(scale))
  np.testing.assert_allclose(y_f[:, m:-m, m:-m], y_l[:, m:-m, m:-m], atol=1e-4, rtol=1e-5)
  x_l = layered.apply({"params": params}, y_l, method=IKEFlow.inverse)
  x_f = fast.apply({"params": params}, y_l, method=IKEFlow.inverse)
  mi = m * scale
  np.testing.assert_allclose(x_f[:, mi:-mi, mi:-mi], x_l[:, mi:-mi, mi:-mi], atol=1e-4,
                             rtol=1e-5)
