"""Real photos through the job path: EXIF orientation, ICC profile, alpha and 16-bit colour
go from the input to the SR output (with the `sharpen` method, which needs no training)."""

import json

import numpy as np
import png
import pytest
from PIL import Image, ImageCms, ImageOps

from ikejax.cli import main
from ikejax.imaging import image_io, resize


def _photo(h, w, seed=0):
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 3.0 + c) * np.cos(y / 5.0) for c in range(3)], -1) * 90 + 128
  return np.clip(img + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def _sharpen(path, out, scale=2):
  rec = main.run(str(path), str(out), method="sharpen", scale=scale, progress=False)
  return rec, out / f"{path.stem}_x{scale}.png"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_applies_each_exif_orientation_as_pillow(tmp_path, orientation):
  path = tmp_path / "o.jpg"
  exif = Image.Exif()
  exif[0x0112] = orientation
  Image.fromarray(_photo(8, 13)).save(path, exif=exif, quality=95)
  loaded = image_io.read_image(path)
  with Image.open(path) as img:
    upright = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
  np.testing.assert_array_equal(loaded.pixels, upright)
  assert loaded.orientation == orientation


def test_exif_6_photo_gives_an_upright_output(tmp_path):
  """Stored 64 x 40 (landscape), shown by viewers as a 40 x 64 portrait."""
  path = tmp_path / "phone.jpg"
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(_photo(40, 64)).save(path, exif=exif, quality=95)
  rec, sr = _sharpen(path, tmp_path / "out")
  assert Image.open(sr).size == (80, 128)  # (W, H): the upright portrait, x2
  assert rec["exif_orientation"] == 6 and rec["input_shape"] == [64, 40, 3]


def test_rgba_in_rgba_out_with_the_alpha_upscaled(tmp_path):
  rgb = _photo(24, 30)
  alpha = np.zeros((24, 30), np.uint8)
  alpha[4:20, 6:25] = 255
  alpha[10:14, 10:20] = 90
  Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "logo.png")
  rec, sr = _sharpen(tmp_path / "logo.png", tmp_path / "out")
  out = Image.open(sr)
  assert out.mode == "RGBA" and out.size == (60, 48) and rec["alpha"]
  got = np.asarray(out)[:, :, 3].astype(int)
  want = np.clip(resize.imresize(alpha / 255.0, 2.0, "matlab"), 0, 1) * 255
  assert np.abs(got - want).max() <= 1


def test_grey_alpha_in_grey_alpha_out(tmp_path):
  la = np.dstack([_photo(20, 22)[:, :, 0], np.full((20, 22), 200, np.uint8)])
  Image.fromarray(la, "LA").save(tmp_path / "g.png")
  _, sr = _sharpen(tmp_path / "g.png", tmp_path / "out")
  out = Image.open(sr)
  assert out.mode == "LA" and out.size == (44, 40)
  assert np.all(np.asarray(out)[:, :, 1] == 200)


def test_16bit_rgb_in_16bit_rgb_out_as_the_8bit_run_scaled(tmp_path):
  rgb8 = _photo(20, 24)
  Image.fromarray(rgb8).save(tmp_path / "a8.png")
  image_io.save_image(tmp_path / "a16.png", rgb8.astype(np.uint16) * 257)  # the same values
  _, sr8 = _sharpen(tmp_path / "a8.png", tmp_path / "o8")
  rec, sr16 = _sharpen(tmp_path / "a16.png", tmp_path / "o16")
  w, h, rows, info = png.Reader(filename=str(sr16)).asDirect()
  assert info["bitdepth"] == 16 and info["planes"] == 3 and rec["bit_depth"] == 16
  out16 = np.vstack([np.asarray(r, np.int64) for r in rows]).reshape(h, w, 3)
  out8 = np.asarray(Image.open(sr8), np.int64)
  assert np.abs(out16 - 257 * out8).max() <= 128  # 8-bit rounding, in 16-bit units
  assert len(np.unique(out16 % 257)) > 1  # finer than the 8-bit grid


@pytest.mark.parametrize("bits", [8, 16])
def test_the_icc_profile_is_copied_to_the_output(tmp_path, bits):
  icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
  rgb = _photo(16, 18)
  path = tmp_path / "p.png"
  if bits == 8:
    Image.fromarray(rgb).save(path, icc_profile=icc)
  else:
    image_io.save_image(path, rgb.astype(np.uint16) * 257, icc_profile=icc)
  assert image_io.read_image(path).icc_profile == icc
  rec, sr = _sharpen(path, tmp_path / "out")
  assert Image.open(sr).info.get("icc_profile") == icc and rec["icc_profile"]
  assert json.loads((tmp_path / "out" / "p_x2.json").read_text())["icc_profile"]
