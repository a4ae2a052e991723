"""Tests for ikejax.imaging.image_io: reading, range maps, atomic writes, kernels, default job."""

import io
import json
import os

import numpy as np
from PIL import Image
import png
import pytest
import scipy.io

from ikejax.imaging import image_io
from ikejax.imaging.image_io import ImageError


def _rgb(h=6, w=7, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mode_and_info(path):
  with Image.open(path) as img:
    return img.mode, dict(img.info)


def _listing(directory):
  return sorted(os.listdir(directory))


# --- Bad inputs -----------------------------------------------------------------------------


def _assert_image_error(path):
  with pytest.raises(ImageError) as info:
    image_io.read_image(path)
  message = str(info.value)
  assert str(path) in message
  assert '\n' not in message
  return message


def test_missing_file(tmp_path):
  message = _assert_image_error(tmp_path / 'missing.png')
  assert 'not found' in message


def test_directory(tmp_path):
  message = _assert_image_error(tmp_path)
  assert 'directory' in message


def test_text_file_named_png(tmp_path):
  path = tmp_path / 'notes.png'
  path.write_text('this is not an image\n' * 10)
  _assert_image_error(path)


def test_empty_file(tmp_path):
  path = tmp_path / 'empty.png'
  path.write_bytes(b'')
  _assert_image_error(path)


@pytest.mark.parametrize('keep_fraction', [0.3, 0.6, 0.9])
def test_truncated_png(tmp_path, keep_fraction):
  noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(noise).save(buf, format='PNG')
  data = buf.getvalue()
  path = tmp_path / 'cut.png'
  path.write_bytes(data[:int(len(data) * keep_fraction)])
  _assert_image_error(path)


def test_truncated_png_header_only(tmp_path):
  buf = io.BytesIO()
  Image.fromarray(_rgb()).save(buf, format='PNG')
  path = tmp_path / 'head.png'
  path.write_bytes(buf.getvalue()[:20])
  _assert_image_error(path)


def test_corrupt_jpeg(tmp_path):
  noise = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(noise).save(buf, format='JPEG', quality=90)
  data = bytearray(buf.getvalue())
  path = tmp_path / 'cut.jpg'
  path.write_bytes(bytes(data[:len(data) // 2]))
  _assert_image_error(path)


def test_float_image_rejected(tmp_path):
  path = tmp_path / 'float.tif'
  Image.fromarray(np.ones((4, 5), np.float32)).save(path)
  message = _assert_image_error(path)
  assert 'mode F' in message


def test_intermediate_exception_types_become_image_error(tmp_path, monkeypatch):
  path = tmp_path / 'ok.png'
  Image.fromarray(_rgb()).save(path)

  def broken_load(self):
    raise IndexError('decoder blew up')

  monkeypatch.setattr(Image.Image, 'load', broken_load)
  message = _assert_image_error(path)
  assert 'IndexError' in message


# --- Modes ----------------------------------------------------------------------------------


def test_rgb_png(tmp_path):
  pixels = _rgb()
  path = tmp_path / 'rgb.png'
  Image.fromarray(pixels).save(path)
  loaded = image_io.read_image(path)
  assert loaded.pixels.dtype == np.uint8 and loaded.bit_depth == 8
  assert not loaded.was_gray
  assert loaded.path == str(path)
  np.testing.assert_array_equal(loaded.pixels, pixels)


def test_rgba_keeps_alpha_aside(tmp_path):
  rgba = np.concatenate([_rgb(), np.full((6, 7, 1), 255, np.uint8)], axis=-1)
  rgba[0, 0, 3] = 0  # Alpha is kept aside, not composited: pixel keeps its colour.
  path = tmp_path / 'rgba.png'
  Image.fromarray(rgba, 'RGBA').save(path)
  loaded = image_io.read_image(path)
  assert loaded.pixels.shape == (6, 7, 3) and loaded.bit_depth == 8
  np.testing.assert_array_equal(loaded.pixels, rgba[:, :, :3])
  np.testing.assert_array_equal(loaded.alpha, rgba[:, :, 3])
  image_io.save_image(tmp_path / 'back.png', loaded.pixels, alpha=loaded.alpha)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'back.png')), rgba)


def test_la_keeps_alpha_aside(tmp_path):
  la = np.stack([_rgb()[:, :, 0], np.full((6, 7), 128, np.uint8)], axis=-1)
  path = tmp_path / 'la.png'
  Image.fromarray(la, 'LA').save(path)
  loaded = image_io.read_image(path)
  assert loaded.was_gray and loaded.bit_depth == 8
  np.testing.assert_array_equal(loaded.pixels, np.repeat(la[:, :, :1], 3, axis=-1))
  np.testing.assert_array_equal(loaded.alpha, la[:, :, 1])
  image_io.save_image(tmp_path / 'back.png', loaded.pixels, gray=True, alpha=loaded.alpha)
  back = Image.open(tmp_path / 'back.png')
  assert back.mode == 'LA'
  np.testing.assert_array_equal(np.asarray(back), la)


def test_gray_l(tmp_path):
  gray = _rgb()[:, :, 1]
  path = tmp_path / 'l.png'
  Image.fromarray(gray).save(path)
  loaded = image_io.read_image(path)
  assert loaded.was_gray and loaded.pixels.dtype == np.uint8
  for c in range(3):
    np.testing.assert_array_equal(loaded.pixels[:, :, c], gray)


def test_bilevel(tmp_path):
  bits = _rgb()[:, :, 0] > 127
  path = tmp_path / 'bits.png'
  Image.fromarray(bits).save(path)
  assert _mode_and_info(path)[0] == '1'
  loaded = image_io.read_image(path)
  assert loaded.was_gray and loaded.pixels.dtype == np.uint8
  np.testing.assert_array_equal(loaded.pixels[:, :, 2], np.where(bits, 255, 0))


def test_palette(tmp_path):
  palette_rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
  index = np.random.default_rng(3).integers(0, 4, (6, 7)).astype(np.uint8)
  img = Image.fromarray(index, 'P')
  img.putpalette(palette_rgb.ravel().tolist())
  path = tmp_path / 'p.png'
  img.save(path)
  loaded = image_io.read_image(path)
  assert not loaded.was_gray and loaded.bit_depth == 8
  np.testing.assert_array_equal(loaded.pixels, palette_rgb[index])


@pytest.mark.filterwarnings('error::UserWarning')  # Pillow warns on a direct P -> RGB conversion.
def test_palette_with_transparency(tmp_path):
  palette_rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
  index = np.random.default_rng(4).integers(0, 4, (6, 7)).astype(np.uint8)
  img = Image.fromarray(index, 'P')
  img.putpalette(palette_rgb.ravel().tolist())
  path = tmp_path / 'pt.png'
  img.save(path, transparency=bytes([0, 255, 128, 255]))
  assert 'transparency' in _mode_and_info(path)[1]
  loaded = image_io.read_image(path)
  np.testing.assert_array_equal(loaded.pixels, palette_rgb[index])


@pytest.mark.parametrize('byteorder', ['<u2', '>u2'])
def test_gray_16bit(tmp_path, byteorder):
  gray = (np.arange(6 * 7).reshape(6, 7) * 1531 + 7).astype(np.uint16)
  path = tmp_path / 'g16.png'
  Image.fromarray(gray.astype(byteorder)).save(path)
  loaded = image_io.read_image(path)
  assert loaded.bit_depth == 16 and loaded.pixels.dtype == np.uint16
  assert loaded.was_gray and loaded.pixels.shape == (6, 7, 3)
  for c in range(3):
    np.testing.assert_array_equal(loaded.pixels[:, :, c], gray)


def test_mode_i_in_range_is_16bit(tmp_path):
  values = np.array([[0, 1, 65535], [300, 40000, 2]], np.int32)
  path = tmp_path / 'i.tif'
  Image.fromarray(values, 'I').save(path)
  assert _mode_and_info(path)[0] == 'I'
  loaded = image_io.read_image(path)
  assert loaded.bit_depth == 16 and loaded.was_gray
  np.testing.assert_array_equal(loaded.pixels[:, :, 0], values)


def test_mode_i_out_of_range_rejected(tmp_path):
  path = tmp_path / 'i.tif'
  Image.fromarray(np.array([[0, 70000]], np.int32), 'I').save(path)
  message = _assert_image_error(path)
  assert '70000' in message


def test_cmyk_jpeg(tmp_path):
  # A flat colour survives JPEG compression almost exactly.
  rgb = np.zeros((16, 16, 3), np.uint8)
  rgb[...] = (200, 100, 50)
  path = tmp_path / 'cmyk.jpg'
  Image.fromarray(rgb).convert('CMYK').save(path, quality=95)
  assert _mode_and_info(path)[0] == 'CMYK'
  loaded = image_io.read_image(path)
  assert loaded.pixels.shape == (16, 16, 3) and loaded.pixels.dtype == np.uint8
  assert loaded.bit_depth == 8 and not loaded.was_gray
  assert np.abs(loaded.pixels.astype(int) - rgb).max() <= 3


@pytest.mark.parametrize('alpha', [False, True])
def test_rgb_16bit_png_round_trip(tmp_path, alpha):
  rng = np.random.default_rng(5)
  pixels = rng.integers(0, 65536, (5, 6, 3)).astype(np.uint16)
  a = rng.integers(0, 65536, (5, 6)).astype(np.uint16) if alpha else None
  path = tmp_path / 'rgb16.png'
  image_io.save_image(path, pixels, alpha=a)
  w, h, rows, info = png.Reader(filename=str(path)).asDirect()
  assert (info['bitdepth'], info['planes']) == (16, 4 if alpha else 3)
  stored = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, -1)
  np.testing.assert_array_equal(stored[:, :, :3], pixels)
  loaded = image_io.read_image(path)
  assert loaded.bit_depth == 16 and loaded.pixels.dtype == np.uint16 and not loaded.was_gray
  np.testing.assert_array_equal(loaded.pixels, pixels)
  if alpha:
    np.testing.assert_array_equal(loaded.alpha, a)
  else:
    assert loaded.alpha is None


# --- Model range ----------------------------------------------------------------------------


@pytest.mark.parametrize('bit_depth,dtype', [(8, np.uint8), (16, np.uint16)])
def test_model_range_round_trip(bit_depth, dtype):
  grid = np.arange(2**bit_depth, dtype=dtype).reshape(-1, 1, 1)
  x = image_io.to_model_range(grid, bit_depth)
  assert x.dtype == np.float32
  assert x.min() == -1.0 and x.max() == 1.0
  back = image_io.from_model_range(x, bit_depth)
  assert back.dtype == dtype
  np.testing.assert_array_equal(back, grid)


def test_model_range_values_and_clipping():
  x = image_io.to_model_range(np.array([0, 51, 255], np.uint8), 8)
  np.testing.assert_allclose(x, [-1.0, 51 / 255 * 2 - 1, 1.0], rtol=0, atol=1e-7)
  out = image_io.from_model_range(np.array([-3.0, -1.0, 0.0, 1.0, 7.0, np.inf]), 8)
  np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 255])
  with pytest.raises(ValueError):
    image_io.from_model_range(np.array([0.0, np.nan]), 8)
  with pytest.raises(ValueError):
    image_io.to_model_range(np.zeros(3, np.uint8), 12)


# --- Writing --------------------------------------------------------------------------------


def test_save_rgb_and_gray_round_trip(tmp_path):
  pixels = _rgb(9, 8)
  image_io.save_image(tmp_path / 'a.png', pixels)
  np.testing.assert_array_equal(image_io.read_image(tmp_path / 'a.png').pixels, pixels)

  image_io.save_image(tmp_path / 'g.png', pixels, gray=True)
  with Image.open(tmp_path / 'g.png') as img:
    assert img.mode == 'L'
    written = np.asarray(img)
  expected = np.rint(pixels.astype(np.float64).mean(axis=-1)).astype(np.uint8)
  np.testing.assert_array_equal(written, expected)
  assert _listing(tmp_path) == ['a.png', 'g.png']


def test_save_gray_16bit(tmp_path):
  gray = (np.arange(30).reshape(5, 6) * 2000 + 3).astype(np.uint16)
  pixels = np.repeat(gray[:, :, None], 3, axis=-1)
  path = tmp_path / 'g16.png'
  image_io.save_image(path, pixels, gray=True)
  loaded = image_io.read_image(path)
  assert loaded.bit_depth == 16 and loaded.was_gray
  np.testing.assert_array_equal(loaded.pixels[:, :, 0], gray)


def test_saved_file_has_normal_permissions(tmp_path):
  path = tmp_path / 'perm.png'
  image_io.save_image(path, _rgb())
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_target_and_leaves_no_temp(tmp_path, monkeypatch):
  target = tmp_path / 'out.png'
  target.write_bytes(b'original')

  def exploding_save(self, fp, *args, **kwargs):
    fp.write(b'partial png bytes')
    raise OSError('disk full')

  monkeypatch.setattr(Image.Image, 'save', exploding_save)
  with pytest.raises(ImageError, match='disk full'):
    image_io.save_image(target, _rgb())
  assert target.read_bytes() == b'original'
  assert _listing(tmp_path) == ['out.png']


def test_atomic_write_other_exception_propagates(tmp_path):
  target = tmp_path / 'notes.txt'
  target.write_text('old')
  with pytest.raises(RuntimeError):
    with image_io.atomic_write(target, 'w') as f:
      f.write('new')
      raise RuntimeError('stop')
  assert target.read_text() == 'old'
  assert _listing(tmp_path) == ['notes.txt']


def test_write_text_and_json(tmp_path):
  image_io.write_text_atomic(tmp_path / 'a.txt', 'héllo\n')
  assert (tmp_path / 'a.txt').read_text(encoding='utf-8') == 'héllo\n'
  image_io.write_json_atomic(tmp_path / 'b.json', {'psnr': np.float32(1.5), 'k': np.arange(3)})
  assert json.loads((tmp_path / 'b.json').read_text()) == {'psnr': 1.5, 'k': [0, 1, 2]}
  assert _listing(tmp_path) == ['a.txt', 'b.json']
  with pytest.raises(TypeError):
    image_io.write_json_atomic(tmp_path / 'c.json', {'x': object()})
  assert _listing(tmp_path) == ['a.txt', 'b.json']


def test_write_to_missing_directory(tmp_path):
  path = tmp_path / 'no' / 'such' / 'dir.png'
  with pytest.raises(ImageError, match=str(path)):
    image_io.save_image(path, _rgb())
  with pytest.raises(ImageError, match='dir.txt'):
    image_io.write_text_atomic(tmp_path / 'no' / 'dir.txt', 'x')


def test_protect_refuses_to_overwrite_input(tmp_path, monkeypatch):
  src = tmp_path / 'input.png'
  Image.fromarray(_rgb()).save(src)
  before = src.read_bytes()
  (tmp_path / 'sub').mkdir()
  os.link(src, tmp_path / 'hardlink.png')
  os.symlink(src, tmp_path / 'symlink.png')
  monkeypatch.chdir(tmp_path)
  aliases = [src, 'input.png', 'sub/../input.png', 'hardlink.png', 'symlink.png']
  for alias in aliases:
    with pytest.raises(ImageError, match='refusing to overwrite'):
      image_io.save_image(alias, _rgb(seed=9), protect=[str(src)])
  assert src.read_bytes() == before
  image_io.save_image(tmp_path / 'other.png', _rgb(seed=9), protect=[src])
  assert (tmp_path / 'other.png').exists()


def test_save_rejects_non_png_suffix(tmp_path):
  with pytest.raises(ImageError, match='out.jpg'):
    image_io.save_image(tmp_path / 'out.jpg', _rgb())


# --- Kernels --------------------------------------------------------------------------------


def test_load_kernel_mat_and_npy(tmp_path):
  kernel = np.random.default_rng(6).random((13, 13))
  scipy.io.savemat(tmp_path / 'k.mat', {'Kernel': kernel})
  np.save(tmp_path / 'k.npy', kernel.astype(np.float32))
  got = image_io.load_kernel(tmp_path / 'k.mat')
  assert got.dtype == np.float64 and got.shape == (13, 13)
  np.testing.assert_array_equal(got, kernel)
  np.testing.assert_allclose(image_io.load_kernel(tmp_path / 'k.npy'), kernel, rtol=1e-6)


def test_load_kernel_errors(tmp_path):
  scipy.io.savemat(tmp_path / 'wrong.mat', {'K': np.ones((3, 3))})
  (tmp_path / 'junk.mat').write_bytes(b'not a mat file at all' * 10)
  np.save(tmp_path / 'vec.npy', np.ones(5))
  cases = {
      'missing.mat': 'not found',
      'wrong.mat': 'Kernel',
      'junk.mat': 'cannot read kernel',
      'vec.npy': 'square',
      'k.txt': '.mat or .npy',
  }
  for name, fragment in cases.items():
    with pytest.raises(ImageError) as info:
      image_io.load_kernel(tmp_path / name)
    assert fragment in str(info.value) and name in str(info.value)


# --- Default job ----------------------------------------------------------------------------


def _reference_degrade(hr, kernel, scale):
  """Correlation by explicit shifted slices of a symmetric-padded image."""
  k = kernel.shape[0]
  r = k // 2
  padded = np.pad(hr.astype(np.float64), ((r, r), (r, r), (0, 0)), mode='symmetric')
  h, w = hr.shape[:2]
  out = np.zeros(hr.shape, np.float64)
  for a in range(k):
    for b in range(k):
      out += kernel[a, b] * padded[a:a + h, b:b + w]
  return np.clip(np.rint(out[::scale, ::scale]), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('scale,hr_size,k', [(2, 512, 11), (3, 510, 15), (4, 512, 19)])
def test_default_image(scale, hr_size, k):
  lr, hr, kernel = image_io.default_image(scale)
  assert hr.shape == (hr_size, hr_size, 3) and hr.dtype == np.uint8
  assert lr.shape == (hr_size // scale, hr_size // scale, 3) and lr.dtype == np.uint8
  assert kernel.shape == (k, k) and kernel.dtype == np.float64
  assert abs(kernel.sum() - 1.0) < 1e-12 and kernel.min() > 0

  # The kernel's centre of mass sits (scale - 1) / 2 px after its centre, so
  # LR pixel i looks at HR coordinate scale * i + (scale - 1) / 2.
  rows, cols = np.mgrid[0:k, 0:k]
  for coord in (rows, cols):
    assert abs((kernel * coord).sum() - (k // 2 + (scale - 1) / 2)) < 0.05
  # Anisotropic and rotated: the covariance has a non-zero off-diagonal term.
  mean_r, mean_c = (kernel * rows).sum(), (kernel * cols).sum()
  assert abs((kernel * (rows - mean_r) * (cols - mean_c)).sum()) > 0.1

  import skimage.data  # pylint: disable=g-import-not-at-top
  np.testing.assert_array_equal(hr, skimage.data.astronaut()[:hr_size, :hr_size])

  expected = _reference_degrade(hr, kernel, scale)
  diff = np.abs(lr.astype(int) - expected)
  # Summation order differs, so a value exactly at .5 may round either way.
  assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_default_image_is_deterministic():
  a = image_io.default_image(2)
  b = image_io.default_image(2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ValueError):
    image_io.default_image(0)
