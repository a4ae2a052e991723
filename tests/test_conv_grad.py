"""`conv_grad.conv2d`: the values and both gradients of `lax.conv_general_dilated`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ikejax import conv_grad

DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("shape, k, padding", [
    ((2, 13, 9, 5), (3, 3), "SAME"),          # rows not a multiple of the block
    ((1, 8, 40, 4), (3, 3), ((1, 1), (1, 1))),  # flax's `padding=1`
    ((3, 11, 7, 2), (5, 3), "VALID"),
    ((1, 6, 6, 3), (2, 2), "SAME"),            # even kernel: asymmetric SAME padding
])
def test_value_and_gradients_match_lax(shape, k, padding, monkeypatch):
  monkeypatch.setattr(conv_grad, "_BLOCK_PIXELS", 16)  # several blocks on small images
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (*k, shape[-1], 6))
  pads = padding if isinstance(padding, str) else padding
  ref = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)
  loss = lambda f: jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1))
  (v0, (dx0, dw0)) = loss(ref)(x, w)
  (v1, (dx1, dw1)) = loss(lambda x, w: conv_grad.conv2d(x, w, padding))(x, w)
  np.testing.assert_allclose(v1, v0, rtol=1e-5)
  np.testing.assert_allclose(dx1, dx0, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dw1, dw0, rtol=1e-4, atol=1e-4)


def test_flax_conv_takes_it_and_refuses_strides():
  x = jnp.ones((1, 8, 8, 3))
  plain = nn.Conv(4, (3, 3), padding="SAME")
  fast = nn.Conv(4, (3, 3), padding="SAME", conv_general_dilated=conv_grad.conv_general_dilated)
  p = plain.init(jax.random.key(0), x)
  np.testing.assert_allclose(fast.apply(p, x), plain.apply(p, x), rtol=1e-5)
  strided = nn.Conv(4, (3, 3), strides=2, conv_general_dilated=conv_grad.conv_general_dilated)
  with pytest.raises(ValueError, match="stride-1"):
    strided.init(jax.random.key(0), x)


def _primitives(f, *args) -> set:
  """Primitive names of `f`'s program, nested ones included. `f` must be a new function
  (a fresh lambda): `make_jaxpr` reuses the trace of a function it has seen."""
  names = set()

  def walk(jaxpr):  # a Jaxpr, or a ClosedJaxpr in an equation's params (jit, scan bodies)
    for e in getattr(jaxpr, "jaxpr", jaxpr).eqns:
      names.add(e.primitive.name)
      for v in e.params.values():
        if hasattr(v, "eqns") or hasattr(v, "jaxpr"):
          walk(v)
  walk(jax.make_jaxpr(f)(*args))
  return names


@pytest.mark.parametrize("name", ["cpu", "plain"])
def test_the_conv_formulation_switch_changes_the_program_not_the_function(name, monkeypatch):
  from ikejax import ops
  monkeypatch.setitem(ops._CONV, "formulation", name)
  x = jax.random.normal(jax.random.key(0), (1, 12, 10, 3))
  w = jax.random.normal(jax.random.key(1), (5, 5, 3, 4))
  ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)
  np.testing.assert_allclose(ops.conv2d_banded(x, w), ref, rtol=1e-4, atol=1e-4)
  banded = _primitives(lambda x, w: ops.conv2d_banded(x, w), x, w)
  blocked = _primitives(jax.grad(lambda w: jnp.sum(conv_grad.conv2d(x, w))), w)
  if name == "cpu":  # the banded matmul and the blocked (scanned) filter gradient
    assert "dot_general" in banded and "conv_general_dilated" not in banded
    assert "scan" in blocked
  else:  # lax.conv itself, with XLA's own gradient
    assert banded == {"conv_general_dilated"}
    assert "scan" not in blocked and "dot_general" not in blocked


def test_auto_takes_the_cpu_formulations_on_cpu_only(monkeypatch):
  from ikejax import ops
  monkeypatch.setitem(ops._CONV, "formulation", "auto")
  assert ops.cpu_convs() == (jax.default_backend() == "cpu")
  with pytest.raises(ValueError, match="conv formulation"):
    ops.set_conv_formulation("fastest")
