"""`--method kernelgan` and `--method issr-dil`: single and folder runs, outputs, errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from ikejax.imaging import degrade, image_io
from ikejax.runs import job
import cli_runner


def _run(*args, timeout=300):
  return cli_runner.run("ikejax.main", *args, timeout=timeout)


def _textured(h, w, seed):
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:h, 0:w]
  img = np.stack([np.sin(x / 2.0 + c) * np.cos(y / 3.0 + seed) for c in range(3)], -1) * 90 + 128
  return np.clip(img + rng.randn(h, w, 3) * 8, 0, 255).astype(np.uint8)


def test_issr_dil_folder_run_scores_resumes_and_reports_bad_files(tmp_path):
  lr, gt = tmp_path / "lr", tmp_path / "gt"
  lr.mkdir()
  gt.mkdir()
  for i in range(2):
    hr = _textured(80, 72, i)
    Image.fromarray(hr).save(gt / f"im_{i}.png")
    Image.fromarray(hr[::2, ::2]).save(lr / f"im_{i}.png")
  (lr / "broken.png").write_bytes(b"not a png")
  out = tmp_path / "out"
  args = ("--method", "issr-dil", "--config", "tiny", "--images", str(lr), "--gt", str(gt),
          "--out", str(out), "--noprogress")
  r = _run(*args)
  assert r.returncode == 1, r.stderr  # one failed file
  assert "broken.png" in r.stderr and "Traceback" not in r.stderr
  manifest = json.loads((out / "manifest.json").read_text())
  rows = {os.path.basename(row["image"]): row for row in manifest["images"]}
  assert rows["broken.png"]["status"] == "failed"
  for i in range(2):
    row = rows[f"im_{i}.png"]
    assert row["status"] == "done" and np.isfinite(row["psnr_y"])
    record = json.loads((out / f"im_{i}_x2.json").read_text())
    assert record["method"] == "issr-dil" and len(record["kernel"]["drk"]) == 11
    assert image_io.load_kernel(str(out / f"im_{i}_x2_kernel.mat")).shape == (15, 15)
    assert np.asarray(Image.open(out / f"im_{i}_x2.png")).shape == (80, 72, 3)
  r = _run(*args)
  manifest = json.loads((out / "manifest.json").read_text())
  assert [row["status"] for row in manifest["images"]].count("done earlier") == 2


def test_kernelgan_single_run_on_the_default_image(tmp_path):
  r = _run("--method", "kernelgan", "--config", "tiny", "--out", str(tmp_path), "--noprogress")
  assert r.returncode == 0, r.stderr
  assert "kernelgan: Y-PSNR" in r.stdout
  record = json.loads((tmp_path / "astronaut_x2.json").read_text())
  assert record["config"]["kernelgan"]["iters"] == 6
  assert np.asarray(record["kernel"]["raw_x2"]).shape == (13, 13)
  k = np.load(tmp_path / "astronaut_x2_kernel.npy")
  assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-6
  assert {"g_gan", "identity"} <= set().union(*map(set, record["history"]))


def test_method_flag_errors_are_one_line(tmp_path):
  for args, needle in ((("--method", "kernelgan", "--scale", "3"), "x2 kernels"),
                       (("--method", "issr-dil", "--iters", "5"), "--iters"),
                       (("--method", "kernelgan", "--ablate", "no_inter"), "--method ike only"),
                       (("--method", "issr-dil", "--batch", "2"), "--batch"),
                       (("--method", "kernelgan", "--config", "fast"), "unknown kernelgan config"),
                       (("--kernel", str(tmp_path)), "no kernel for astronaut"),
                       (("--method", "kernelgan", "--kernel", str(tmp_path)),
                        "--method ike or issr-dil"),
                       (("--method", "issr-dil", "--kernel", str(tmp_path / "no.npy")),
                        "no such file")):
    r = _run(*args, "--out", str(tmp_path))
    assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1


def test_find_kernel_naming_rules(tmp_path):
  (tmp_path / "im_7.npy").write_bytes(b"")
  (tmp_path / "kernel_7.mat").write_bytes(b"")
  (tmp_path / "kernel_8.mat").write_bytes(b"")
  assert job.find_kernel(str(tmp_path), "lr/im_7.png", 2).endswith("im_7.npy")
  (tmp_path / "im_7_x2_kernel.npy").write_bytes(b"")  # an ikejax run's estimate comes first
  assert job.find_kernel(str(tmp_path), "lr/im_7.png", 2).endswith("im_7_x2_kernel.npy")
  assert job.find_kernel(str(tmp_path), "lr/im_7.png", 4).endswith("im_7.npy")
  assert job.find_kernel(str(tmp_path), "im_8.png", 2).endswith("kernel_8.mat")  # DIV2KRK
  one = str(tmp_path / "kernel_8.mat")
  assert job.find_kernel(one, "anything.png", 2) == one
  with pytest.raises(ValueError, match="no kernel for im_9 .*kernel_9.mat"):
    job.find_kernel(str(tmp_path), "im_9.png", 2)
  np.save(tmp_path / "neg.npy", -np.ones((5, 5)))
  with pytest.raises(ValueError, match="no positive taps"):
    job.given_kernel(str(tmp_path / "neg.npy"), "x.png", 2)


def test_issr_dil_on_given_kernels_folder_run(tmp_path):
  lr, kdir = tmp_path / "lr", tmp_path / "kernels"
  lr.mkdir()
  kdir.mkdir()
  for i in range(2):
    Image.fromarray(_textured(40, 36, i)).save(lr / f"im_{i}.png")
  k = degrade.gaussian_kernel(13, (2.0, 0.8), 0.4)
  np.save(kdir / "im_0_x2_kernel.npy", k)  # none for im_1
  out = tmp_path / "out"
  r = _run("--method", "issr-dil", "--config", "tiny", "--images", str(lr), "--kernel", str(kdir),
           "--out", str(out), "--noprogress")
  assert r.returncode == 1 and "no kernel for im_1" in r.stderr and "Traceback" not in r.stderr
  record = json.loads((out / "im_0_x2.json").read_text())
  assert record["kernel"]["source"] == f"given: {kdir / 'im_0_x2_kernel.npy'}"
  assert record["config"]["kernel_from"] == str(kdir)
  np.testing.assert_allclose(np.load(out / "im_0_x2_kernel.npy"), k, atol=0)
  assert np.asarray(Image.open(out / "im_0_x2.png")).shape == (80, 72, 3)
  # Writing into the kernels' own folder would overwrite the given kernel: refused per image.
  r = _run("--method", "issr-dil", "--config", "tiny", "--images", str(lr / "im_0.png"),
           "--kernel", str(kdir), "--out", str(kdir), "--noprogress")
  assert r.returncode == 1 and "would overwrite an input file" in r.stderr
  np.testing.assert_array_equal(np.load(kdir / "im_0_x2_kernel.npy"), k)
