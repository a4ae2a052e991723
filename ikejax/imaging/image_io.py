"""Host-side image and kernel I/O for ikejax.

Everything here runs on the host with numpy and Pillow; nothing touches JAX.
The module covers:

* reading images of the modes that benchmark data and user photos come in
  (`read_image`), normalised to `[H, W, 3]` uint8 or uint16 arrays, upright (EXIF
  orientation applied), with their alpha channel and ICC profile kept aside;
  16-bit colour PNGs through pypng (Pillow decodes them to 8 bits);
* the map between integer pixels and the `[-1, 1]` range the IKE networks
  work in (`to_model_range`, `from_model_range`);
* atomic writing of PNG images, text and JSON (`save_image`,
  `write_text_atomic`, `write_json_atomic`, `atomic_write`), so an interrupted
  run never leaves a half-written file under a final name;
* loading ground-truth blur kernels (`load_kernel`);
* the embedded default job (`default_image`), which needs no data file.

User errors (missing or unreadable files, bad output paths) raise `ImageError`,
a `ValueError` subclass whose message is a single line naming the offending
path or value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import hashlib
import io
import os
import tempfile
from typing import IO, Any, Iterator, Sequence
import zlib

import numpy as np
from PIL import Image
from PIL import ImageFile
import png  # pypng: 16-bit colour PNGs, which Pillow reads and writes as 8-bit
import scipy.io
import scipy.ndimage

PathLike = str | os.PathLike

# A truncated file must be an error, never a silently grey-padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_MAX_VALUE = {8: 255, 16: 65535}
_DTYPE = {8: np.uint8, 16: np.uint16}
_GRAY_16_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N')
_ICC_MODES = ('RGB', 'RGBA', 'RGBX', 'L', 'LA', 'P', 'PA') + _GRAY_16_MODES
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _current_umask() -> int:
  # os.umask can only be read by setting it; doing so once at import time
  # avoids racing other threads later.
  mask = os.umask(0)
  os.umask(mask)
  return mask


_UMASK = _current_umask()


class ImageError(ValueError):
  """A user-facing error about an image, kernel or output file.

  The message is always a single line that names the offending path or value,
  so command-line tools can print it as `error: <message>` without a traceback.
  """

  def __init__(self, message: str):
    super().__init__(_one_line(message))


def _one_line(text: Any) -> str:
  """Collapses `text` to a single line (exception texts may span several)."""
  return ' '.join(str(text).split())


def _describe(exc: BaseException) -> str:
  """A short one-line description of an exception for an error message."""
  if isinstance(exc, OSError) and exc.strerror:
    return _one_line(exc.strerror)
  text = _one_line(exc)
  return text or type(exc).__name__


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedImage:
  """An image read from disk, normalised to three channels.

  `eq=False` keeps identity comparison: comparing numpy fields element-wise
  inside a generated `__eq__` would raise.

  Attributes:
    pixels: `[H, W, 3]` uint8 (bit_depth 8) or uint16 (bit_depth 16) array.
      Grayscale images are replicated to three identical channels.
    bit_depth: 8 or 16, the bit depth of `pixels`.
    was_gray: True if the file stored a grayscale image (modes '1', 'L', 'LA',
      'I', 'I;16*'). Palette and colour images are False even if every colour
      happens to be grey.
    path: the path the image was read from, or None for in-memory images.
    alpha: `[H, W]` alpha channel of `pixels`' dtype, or None (no alpha).
    icc_profile: the file's ICC colour profile (bytes), or None; copied to outputs.
    orientation: the EXIF orientation (1-8) the pixels were turned from (1: as stored).
  """

  pixels: np.ndarray
  bit_depth: int
  was_gray: bool
  path: str | None = None
  alpha: np.ndarray | None = None
  icc_profile: bytes | None = None
  orientation: int = 1

  def __post_init__(self):
    if self.bit_depth not in _DTYPE:
      raise ValueError(f'bit_depth must be 8 or 16, got {self.bit_depth}')
    if self.pixels.ndim != 3 or self.pixels.shape[-1] != 3:
      raise ValueError(f'pixels must be [H, W, 3], got shape {self.pixels.shape}')
    if self.pixels.dtype != _DTYPE[self.bit_depth]:
      raise ValueError(
          f'pixels dtype {self.pixels.dtype} does not match bit_depth {self.bit_depth}')
    if self.alpha is not None and (self.alpha.shape != self.pixels.shape[:2]
                                   or self.alpha.dtype != self.pixels.dtype):
      raise ValueError(f'alpha must be [H, W] {self.pixels.dtype}, got '
                       f'{self.alpha.shape} {self.alpha.dtype}')


def _png_header(path: str) -> tuple[int, int] | None:
  """Returns (bit depth, colour type) from a PNG's IHDR chunk, or None."""
  try:
    with open(path, 'rb') as f:
      head = f.read(29)
  except OSError:
    return None
  if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b'IHDR':
    return None
  return head[24], head[25]


def _replicate_gray(gray: np.ndarray) -> np.ndarray:
  return np.repeat(gray[:, :, np.newaxis], 3, axis=2)


def _alpha_from_pil(img: Image.Image) -> np.ndarray | None:
  """The `[H, W]` uint8 alpha of an 8-bit Pillow image, or None."""
  if img.mode in ('RGBA', 'LA', 'PA'):
    return np.asarray(img.getchannel('A'), dtype=np.uint8).copy()
  if img.mode in ('P', 'L', 'RGB') and 'transparency' in img.info:
    return np.asarray(img.convert('RGBA').getchannel('A'), dtype=np.uint8).copy()
  return None


# EXIF orientation -> the turn that makes stored pixels `[H, W, ...]` upright (as
# `PIL.ImageOps.exif_transpose`; tests check all eight against it).
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _read_png16(path: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
  """A 16-bit colour or grey+alpha PNG through pypng: (`[H, W, 3]` uint16, alpha, was_gray)."""
  width, height, rows, info = png.Reader(filename=path).asDirect()
  planes = info['planes']
  a = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, planes)
  gray = info['greyscale']
  color = np.repeat(a[:, :, :1], 3, axis=2) if gray else a[:, :, :3]
  alpha = a[:, :, -1].copy() if info['alpha'] else None
  return np.ascontiguousarray(color), alpha, gray


def _pixels_from_pil(img: Image.Image, path: str) -> tuple[np.ndarray, int, bool]:
  """Converts a fully loaded Pillow image to ([H, W, 3] pixels, bits, was_gray).

  Raises:
    ImageError: for modes that have no lossless integer RGB form.
  """
  mode = img.mode
  if mode == 'RGB':
    return np.asarray(img, dtype=np.uint8), 8, False
  if mode in ('RGBA', 'RGBX'):
    # Alpha is kept aside (`_alpha_from_pil`), not composited: the DIV2KRK LR PNGs
    # carry a constant, fully opaque alpha channel.
    return np.asarray(img, dtype=np.uint8)[:, :, :3].copy(), 8, False
  if mode in ('L', 'LA', 'La', '1'):
    gray = np.asarray(img.convert('L'), dtype=np.uint8)
    return _replicate_gray(gray), 8, True
  if mode in ('P', 'PA'):
    # A palette with transparency must go through RGBA: Pillow warns on (and
    # may mishandle) a direct P -> RGB conversion in that case.
    if mode == 'PA' or 'transparency' in img.info:
      rgb = np.asarray(img.convert('RGBA'), dtype=np.uint8)[:, :, :3].copy()
    else:
      rgb = np.asarray(img.convert('RGB'), dtype=np.uint8)
    return rgb, 8, False
  if mode in _GRAY_16_MODES:
    # astype also turns big-endian ('>u2') data into native uint16.
    gray = np.asarray(img).astype(np.uint16)
    return _replicate_gray(gray), 16, True
  if mode == 'I':
    # Older Pillow versions (and some TIFFs) give 16-bit grayscale as 32-bit
    # 'I'. Accept it only when the values really fit in 16 bits.
    values = np.asarray(img)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > 65535:
      raise ImageError(
          f'32-bit integer image has values in [{lo}, {hi}], outside the 16-bit range '
          f'[0, 65535]: {path}')
    return _replicate_gray(values.astype(np.uint16)), 16, True
  if mode == 'F':
    raise ImageError(f'floating-point images (mode F) are not supported: {path}')
  # CMYK, YCbCr, LAB, HSV, premultiplied RGBa, ...: let Pillow convert.
  return np.asarray(img.convert('RGB'), dtype=np.uint8), 8, False


def read_image(path: PathLike) -> LoadedImage:
  """Reads an image file into a `[H, W, 3]` integer array.

  Supported inputs and what they become:

  * 'RGB' -> uint8; 'RGBA', 'RGBX' -> uint8 with the alpha channel in `alpha`
    (not composited onto a background).
  * 'L', '1', 'LA' -> uint8 grey replicated to three channels
    (`was_gray=True`); '1' maps to {0, 255}; alpha in `alpha`.
  * 'P', 'PA' (palette) -> uint8 RGB, via RGBA when the palette has
    transparency.
  * 16-bit grayscale ('I;16', 'I;16B', ...; also 'I' when every value fits in
    [0, 65535]) -> uint16 replicated to three channels, `bit_depth=16`.
  * 'CMYK' (e.g. CMYK JPEG) and other colour modes -> Pillow's conversion to
    uint8 RGB (no colour management; their profile, of another colour space, is
    dropped). RGB and grey files keep theirs in `icc_profile`, for the outputs.
  * 16-bit-per-channel colour PNGs (48-bit RGB, 64-bit RGBA, 32-bit grey plus
    alpha), which Pillow decodes to 8 bits, are read losslessly with pypng:
    uint16, `bit_depth=16`.

  EXIF orientation is applied (as `PIL.ImageOps.exif_transpose` does): the pixels
  are upright as a viewer shows them, and `orientation` says what was undone.
  Multi-frame files give their first frame.

  Args:
    path: the image file.

  Returns:
    The decoded `LoadedImage`.

  Raises:
    ImageError: if the file is missing, is a directory, is not an image, is
      truncated or corrupt, or has an unsupported mode (e.g. floating point).
  """
  path_str = os.fspath(path)
  if not os.path.exists(path_str):
    raise ImageError(f'image file not found: {path_str}')
  if os.path.isdir(path_str):
    raise ImageError(f'expected an image file but got a directory: {path_str}')
  try:
    with Image.open(path_str) as img:
      # Image.open only parses the header; load() forces the full decode so
      # truncated or corrupt data fail here rather than later.
      img.load()
      file_format = img.format
      orientation = int(img.getexif().get(0x0112, 1) or 1)
      # Kept only where the pixels stay in the profile's colour space (not CMYK -> RGB).
      icc = (img.info.get('icc_profile') or None) if img.mode in _ICC_MODES else None
      header = _png_header(path_str) if file_format == 'PNG' else None
      if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
        pixels, alpha, was_gray = _read_png16(path_str)
        bit_depth = 16
      else:
        pixels, bit_depth, was_gray = _pixels_from_pil(img, path_str)
        alpha = _alpha_from_pil(img) if bit_depth == 8 else None
  except ImageError:
    raise
  except Image.DecompressionBombError as e:
    raise ImageError(f'image is too large to decode safely ({_describe(e)}): {path_str}') from e
  except Image.UnidentifiedImageError as e:
    raise ImageError(f'not a recognised image file: {path_str}') from e
  except MemoryError:
    raise
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise ImageError(f'cannot read image {path_str}: {_describe(e)}') from e
  except Exception as e:  # pylint: disable=broad-except
    # Pillow's decoders occasionally surface struct/zlib/index errors on
    # malformed data; callers are promised ImageError only.
    raise ImageError(
        f'cannot read image {path_str}: {type(e).__name__}: {_describe(e)}') from e

  if orientation not in _ORIENT:
    orientation = 1  # a broken tag: the pixels as stored
  pixels = np.ascontiguousarray(_ORIENT[orientation](pixels))
  alpha = None if alpha is None else np.ascontiguousarray(_ORIENT[orientation](alpha))
  return LoadedImage(pixels=pixels, bit_depth=bit_depth, was_gray=was_gray, path=path_str,
                     alpha=alpha, icc_profile=icc, orientation=orientation)


def _max_value(bit_depth: int) -> int:
  if bit_depth not in _MAX_VALUE:
    raise ValueError(f'bit_depth must be 8 or 16, got {bit_depth}')
  return _MAX_VALUE[bit_depth]


def to_model_range(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
  """Maps integer pixels in `[0, 2**bit_depth - 1]` to float32 in `[-1, 1]`.

  Uses `x / max * 2 - 1`, the convention of the official IKE code.

  Args:
    pixels: integer array of any shape, typically `[H, W, C]`.
    bit_depth: 8 or 16.

  Returns:
    float32 array of the same shape with values in `[-1, 1]`.

  Raises:
    ValueError: if `bit_depth` is not 8 or 16.
  """
  max_value = _max_value(bit_depth)
  # Compute in float64 so the uint16 grid survives the float32 cast exactly
  # enough for `from_model_range` to round back to the same integers.
  x = np.asarray(pixels, dtype=np.float64) / max_value * 2.0 - 1.0
  return x.astype(np.float32)


def from_model_range(x: np.ndarray, bit_depth: int) -> np.ndarray:
  """Maps model outputs in `[-1, 1]` back to integer pixels.

  Values are clipped to `[-1, 1]` and then rounded to the nearest point of
  the integer grid, so `from_model_range(to_model_range(p, b), b) == p`.

  Args:
    x: float array of any shape, typically `[H, W, C]`.
    bit_depth: 8 (returns uint8) or 16 (returns uint16).

  Returns:
    uint8 or uint16 array of the same shape.

  Raises:
    ValueError: if `bit_depth` is not 8 or 16, or `x` contains NaN (a NaN has
      no pixel value; writing it silently would hide a diverged model).
  """
  max_value = _max_value(bit_depth)
  x = np.asarray(x)
  num_nan = int(np.isnan(x).sum())
  if num_nan:
    raise ValueError(f'cannot convert to pixels: {num_nan} NaN values in array of shape '
                     f'{x.shape}')
  out = np.empty(x.shape, _DTYPE[bit_depth])
  flat, dst = x.reshape(-1), out.reshape(-1)
  step = 1 << 22  # float64 in blocks: bounded memory on large images, the same values
  for i in range(0, flat.size, step):
    scaled = (np.clip(flat[i:i + step].astype(np.float64), -1.0, 1.0) + 1.0) / 2.0 * max_value
    dst[i:i + step] = np.rint(scaled)
  return out


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'wb') -> Iterator[IO[Any]]:
  """Opens a temporary file that replaces `path` only if the block succeeds.

  The temporary file is created in the target's directory (so `os.replace` is
  an atomic rename on POSIX), flushed and fsync'ed before the rename. If the
  block raises, the temporary file is removed and `path` is left untouched.
  The new file gets the usual permissions for new files (0666 minus umask).
  The parent directory must already exist.

  Args:
    path: the final destination.
    mode: 'w' (text, UTF-8) or 'wb' (binary).

  Yields:
    The open temporary file.

  Raises:
    ValueError: for a mode other than 'w' or 'wb'.
    OSError: if the temporary file cannot be created or renamed.
  """
  if mode not in ('w', 'wb'):
    raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
  path_str = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path_str))
  fd, tmp_path = tempfile.mkstemp(
      dir=directory, prefix=f'.{os.path.basename(path_str)}.', suffix='.tmp')
  try:
    if mode == 'w':
      f = os.fdopen(fd, 'w', encoding='utf-8')
    else:
      f = os.fdopen(fd, 'wb')
  except BaseException:
    os.close(fd)
    os.unlink(tmp_path)
    raise
  try:
    with f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    # mkstemp creates 0600 files; give the result ordinary permissions.
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    os.replace(tmp_path, path_str)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp_path)
    raise
  # Persist the rename itself; best effort, as not every filesystem allows it.
  with contextlib.suppress(OSError):
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)


def file_fingerprint(path: str) -> dict:
  """`{"size", "mtime_ns", "sha256"}` of a file: what a record says it was made from."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  st = os.stat(path)
  return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}


def same_file(a: str, b: str) -> bool:
  """True if `a` and `b` name the same file (symlinks, hard links, relative paths)."""
  if os.path.realpath(a) == os.path.realpath(b):
    return True
  # Hard links resolve to different paths but are the same file.
  try:
    return os.path.samefile(a, b)
  except OSError:
    return False


def _write_png16(f: IO[bytes], pixels: np.ndarray, alpha: np.ndarray | None,
                 icc_profile: bytes | None) -> None:
  """16-bit PNG (grey `[H, W]` or RGB `[H, W, 3]`, optional alpha) with pypng."""
  planes = [pixels] if pixels.ndim == 2 else [pixels[:, :, c] for c in range(3)]
  if alpha is not None:
    planes.append(alpha)
  h, w = pixels.shape[:2]
  rows = np.stack(planes, axis=-1).reshape(h, w * len(planes))
  writer = png.Writer(w, h, greyscale=pixels.ndim == 2, alpha=alpha is not None, bitdepth=16,
                      compression=6)
  if icc_profile is None:
    writer.write(f, rows)
    return
  buf = io.BytesIO()
  writer.write(buf, rows)
  chunks = list(png.Reader(bytes=buf.getvalue()).chunks())
  # iCCP: profile name, NUL, compression method 0, zlib data; right after IHDR.
  chunks.insert(1, (b'iCCP', b'icc\0\0' + zlib.compress(icc_profile)))
  png.write_chunks(f, chunks)


def save_image(path: PathLike,
               pixels: np.ndarray,
               gray: bool = False,
               protect: Sequence[PathLike] = (),
               alpha: np.ndarray | None = None,
               icc_profile: bytes | None = None) -> None:
  """Writes `pixels` to a PNG file atomically.

  Output formats:

  * uint8 `[H, W, 3]` -> 24-bit RGB PNG (Pillow); with `gray=True` -> 8-bit grey.
  * uint16 `[H, W, 3]` -> 48-bit RGB PNG, with `gray=True` 16-bit grey (pypng;
    `read_image` reads all 16 bits back).
  * `[H, W]` or `[H, W, 1]` input is written as a grey PNG.
  * `alpha` (`[H, W]`, the pixels' dtype) adds an alpha channel (RGBA, grey+alpha);
    `icc_profile` is embedded as the file's colour profile.

  With `gray=True`, the grey value is the mean of the three channels, rounded
  to the nearest integer (halves to even).

  Args:
    path: destination; must end in '.png' (case-insensitive). Its directory
      must exist.
    pixels: uint8 or uint16 array, `[H, W, 3]`, `[H, W, 1]` or `[H, W]`.
    gray: write a single-channel image.
    protect: paths (e.g. the input image) that must never be overwritten.

  Raises:
    ImageError: if `path` is the same file as one in `protect`, does not end in
      '.png', or cannot be written (e.g. missing directory, no permission).
    ValueError: if `pixels` has an unsupported dtype or shape.
  """
  path_str = os.fspath(path)
  if not path_str.lower().endswith('.png'):
    raise ImageError(f'output image must be a .png file, got: {path_str}')
  for protected in protect:
    if same_file(path_str, os.fspath(protected)):
      raise ImageError(f'refusing to overwrite input file: {path_str}')
  if os.path.isdir(path_str):
    raise ImageError(f'output path is a directory: {path_str}')

  pixels = np.asarray(pixels)
  if pixels.dtype not in (np.uint8, np.uint16):
    raise ValueError(f'pixels must be uint8 or uint16, got {pixels.dtype}')
  if pixels.ndim == 3 and pixels.shape[-1] == 1:
    pixels = pixels[:, :, 0]
  if pixels.ndim == 2:
    gray = True
  elif pixels.ndim != 3 or pixels.shape[-1] != 3:
    raise ValueError(f'pixels must be [H, W, 3], [H, W, 1] or [H, W], got {pixels.shape}')
  if gray and pixels.ndim == 3:
    pixels = np.rint(pixels.mean(axis=-1, dtype=np.float64)).astype(pixels.dtype)
  if alpha is not None:
    alpha = np.asarray(alpha)
    if alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype:
      raise ValueError(f'alpha must be [H, W] {pixels.dtype}, got {alpha.shape} {alpha.dtype}')

  try:
    with atomic_write(path_str, 'wb') as f:
      if pixels.dtype == np.uint16:
        _write_png16(f, pixels, alpha, icc_profile)
      else:
        img = Image.fromarray(np.ascontiguousarray(
            pixels if alpha is None else np.dstack([pixels, alpha])))
        img.save(f, format='PNG', **({'icc_profile': icc_profile} if icc_profile else {}))
  except OSError as e:
    raise ImageError(f'cannot write image {path_str}: {_describe(e)}') from e


def write_text_atomic(path: PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically (see `atomic_write`).

  Args:
    path: destination file; its directory must exist.
    text: the full file contents.

  Raises:
    ImageError: if the file cannot be written.
  """
  path_str = os.fspath(path)
  try:
    with atomic_write(path_str, 'w') as f:
      f.write(text)
  except OSError as e:
    raise ImageError(f'cannot write {path_str}: {_describe(e)}') from e


def _json_default(obj: Any) -> Any:
  """Serialises numpy scalars and arrays, which results often contain."""
  if isinstance(obj, np.generic):
    return obj.item()
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  if isinstance(obj, os.PathLike):
    return os.fspath(obj)
  raise TypeError(f'object of type {type(obj).__name__} is not JSON serializable')


def write_json_atomic(path: PathLike, obj: Any) -> None:
  """Writes `obj` as JSON (indent 2, trailing newline) to `path` atomically.

  numpy scalars and arrays are converted to Python numbers and lists.
  Non-finite floats are written as `NaN` / `Infinity` (Python's json
  extension), e.g. an infinite PSNR.

  Args:
    path: destination file; its directory must exist.
    obj: a JSON-serialisable object.

  Raises:
    TypeError: if `obj` is not serialisable (before any file is created).
    ImageError: if the file cannot be written.
  """
  # Serialise first so a bad object never creates even a temporary file.
  text = json.dumps(obj, indent=2, default=_json_default) + '\n'
  write_text_atomic(path, text)


def load_kernel(path: PathLike) -> np.ndarray:
  """Loads a 2-D blur kernel from a `.mat` or `.npy` file.

  `.mat` files must hold the kernel under the key 'Kernel' (the DIV2KRK
  ground-truth layout). The kernel is returned as stored, not renormalised.

  Args:
    path: a `.mat` or `.npy` file.

  Returns:
    float64 `[k, k]` kernel.

  Raises:
    ImageError: if the file is missing, unreadable, has another extension,
      lacks the 'Kernel' key, or does not hold a finite square 2-D array.
  """
  path_str = os.fspath(path)
  suffix = os.path.splitext(path_str)[1].lower()
  if suffix not in ('.mat', '.npy'):
    raise ImageError(f'kernel file must be .mat or .npy, got: {path_str}')
  if not os.path.exists(path_str):
    raise ImageError(f'kernel file not found: {path_str}')
  if os.path.isdir(path_str):
    raise ImageError(f'expected a kernel file but got a directory: {path_str}')
  try:
    if suffix == '.mat':
      contents = scipy.io.loadmat(path_str)
      if 'Kernel' not in contents:
        keys = sorted(k for k in contents if not k.startswith('__'))
        raise ImageError(f"no 'Kernel' variable in {path_str} (found: {keys})")
      kernel = contents['Kernel']
    else:
      kernel = np.load(path_str, allow_pickle=False)
  except ImageError:
    raise
  except MemoryError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # scipy.io raises a zoo of types (MatReadError, ValueError,
    # NotImplementedError for v7.3/HDF5 files, ...); all mean "unreadable".
    raise ImageError(f'cannot read kernel {path_str}: {type(e).__name__}: {_describe(e)}') from e

  try:
    kernel = np.asarray(kernel, dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise ImageError(f'kernel in {path_str} is not numeric: {_describe(e)}') from e
  if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] == 0:
    raise ImageError(f'kernel must be a square 2-D array, got shape {kernel.shape}: {path_str}')
  if not np.all(np.isfinite(kernel)):
    raise ImageError(f'kernel has non-finite values: {path_str}')
  return kernel


# Parameters of the embedded default degradation (see `default_image`).
_DEFAULT_HR_SIZE = 512
_DEFAULT_SIGMAS_X2 = (1.6, 0.9)
_DEFAULT_ANGLE_DEG = 30.0


def gaussian_kernel(size: int, sigmas: tuple[float, float], angle_deg: float,
                    mean: tuple[float, float]) -> np.ndarray:
  """An anisotropic Gaussian sampled on a `[size, size]` grid, summing to 1.

  Args:
    size: side of the kernel in pixels.
    sigmas: standard deviations (major, minor) in pixels, before rotation.
    angle_deg: angle of the major axis, in degrees from the +x (column) axis
      towards +y (rows, i.e. downwards in the image).
    mean: (row, column) position of the Gaussian's mean, in kernel pixel
      coordinates (pixel centres at 0, 1, ..., size - 1).

  Returns:
    float64 `[size, size]` kernel normalised to sum 1.
  """
  theta = math.radians(angle_deg)
  # Columns of `rotation` are the major and minor axes in (x, y) coordinates.
  rotation = np.array([[math.cos(theta), -math.sin(theta)],
                       [math.sin(theta), math.cos(theta)]])
  cov = rotation @ np.diag(np.square(np.asarray(sigmas, np.float64))) @ rotation.T
  inv_cov = np.linalg.inv(cov)
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
  d = np.stack([cols - mean[1], rows - mean[0]], axis=-1)  # (x, y) offsets.
  kernel = np.exp(-0.5 * np.einsum('...i,ij,...j->...', d, inv_cov, d))
  return kernel / kernel.sum()


def default_kernel(scale: int = 2) -> np.ndarray:
  """The fixed blur kernel of the embedded default job (see `default_image`).

  Args:
    scale: integer down-scaling factor, >= 1.

  Returns:
    float64 `[k, k]` kernel with `k = 4 * scale + 3`, summing to 1.
  """
  scale = _check_scale(scale)
  size = 4 * scale + 3
  sigmas = tuple(s * scale / 2 for s in _DEFAULT_SIGMAS_X2)
  # KernelGAN's convention: shifting the mean by half a pixel per extra unit
  # of scale aligns the blurred-and-strided LR grid with the HR grid.
  mu = size // 2 + 0.5 * (scale - size % 2)
  return gaussian_kernel(size, sigmas, _DEFAULT_ANGLE_DEG, (mu, mu))


def _check_scale(scale: int) -> int:
  if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
    raise ValueError(f'scale must be a positive integer, got {scale!r}')
  return int(scale)


def degrade(hr: np.ndarray, kernel: np.ndarray, scale: int) -> np.ndarray:
  """Blurs and subsamples an image with the DIV2KRK convention.

  Each channel is correlated (float64, `scipy.ndimage.correlate`, mode
  'reflect', i.e. half-sample symmetric padding `d c b a | a b c d`) with
  `kernel` centred at index `k // 2`, then every `scale`-th pixel is kept
  starting at 0 (`[::scale, ::scale]`). The result is rounded to the nearest
  integer and clipped to `[0, 255]`.

  Args:
    hr: uint8 `[H, W, 3]` image.
    kernel: float `[k, k]` kernel (odd `k`).
    scale: integer subsampling factor.

  Returns:
    uint8 `[ceil(H / scale), ceil(W / scale), 3]` image.
  """
  scale = _check_scale(scale)
  hr = np.asarray(hr, dtype=np.float64)
  blurred = np.stack(
      [scipy.ndimage.correlate(hr[:, :, c], kernel, mode='reflect') for c in range(hr.shape[-1])],
      axis=-1)
  return np.clip(np.rint(blurred[::scale, ::scale]), 0, 255).astype(np.uint8)


def default_image(scale: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The embedded default job: a blurred, subsampled public-domain photo.

  It needs no file of ours and no network: the HR image is
  `skimage.data.astronaut()` (a public-domain NASA photo shipped inside the
  scikit-image wheel, `[512, 512, 3]` uint8). Parameters, all fixed so the
  result is deterministic:

  * HR: the top-left crop to the largest multiple of `scale` not above 512
    (512 x 512 for x2 and x4, 510 x 510 for x3).
  * Kernel (`default_kernel`): an anisotropic Gaussian of size
    `k = 4 * scale + 3` (11 for x2, 15 for x3, 19 for x4) with standard
    deviations (1.6, 0.9) * scale / 2 px, major axis rotated by 30 degrees
    from the column axis towards the rows, normalised to sum 1. Its mean is at
    `k // 2 + 0.5 * (scale - k % 2)` in both axes (KernelGAN's convention:
    5.5 for x2), so relative to the kernel centre `k // 2` it is shifted by
    `(scale - 1) / 2` px; truncation to the grid moves the centre of mass by
    under 0.05 px.
  * Degradation (`degrade`): per-channel float64 correlation with mode
    'reflect', then `[::scale, ::scale]`, rounded and clipped to uint8. LR
    pixel `i` therefore averages HR pixels around `scale * i + (scale - 1) / 2`,
    the DIV2KRK convention.

  Args:
    scale: integer down-scaling factor (2, 3 and 4 are the usual ones).

  Returns:
    (lr, hr, kernel): lr uint8 `[H / scale, W / scale, 3]` (256 x 256 for x2),
    hr uint8 `[H, W, 3]`, kernel float64 `[k, k]`.

  Raises:
    ValueError: if `scale` is not a positive integer.
  """
  # Imported here so image reading does not pay scikit-image's import time.
  import skimage.data  # pylint: disable=g-import-not-at-top

  scale = _check_scale(scale)
  size = _DEFAULT_HR_SIZE - _DEFAULT_HR_SIZE % scale
  hr = np.ascontiguousarray(skimage.data.astronaut()[:size, :size, :3]).astype(np.uint8)
  kernel = default_kernel(scale)
  lr = degrade(hr, kernel, scale)
  return lr, hr, kernel
