"""experiments/records.py: finished images kept across scratch folders, the rest run later."""

import importlib.util
import os

import numpy as np
import pytest
from PIL import Image

from ikejax.ike import configs
from ikejax.imaging import image_io, resize
from ikejax.runs import folder, records

CFG = configs.get_config("tiny", scale=2, iters=4).replace(log_every=2)
_HERE = os.path.dirname(__file__)


def _script(name):
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(_HERE, "..", "experiments", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


class Killed(Exception):
  pass


def test_keep_then_todo_runs_only_the_rest(tmp_path):
  records, tables = _script("records"), _script("tables")
  lr = tmp_path / "lr"
  lr.mkdir()
  rng = np.random.RandomState(0)
  for i in range(3):
    Image.fromarray(rng.randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(lr / f"im{i}.png")
  keep = str(tmp_path / "records")

  def kill_after_first(job):
    raise Killed()

  with pytest.raises(Killed):  # a session ends after one image; its scratch folder is lost
    folder.run_folder(str(lr), str(tmp_path / "run1"), CFG, seed=1, progress=False,
                      on_image_done=kill_after_first)
  assert records.keep(str(tmp_path / "run1"), keep) == 1
  assert records.keep(str(tmp_path / "run1"), keep) == 0  # kept once
  assert sorted(os.listdir(keep)) == ["im0_x2.json", "im0_x2_kernel.npy", "manifest.json"]
  todo = tmp_path / "todo"
  assert records.todo(str(lr), keep, str(todo)) == 2
  assert sorted(os.listdir(todo)) == ["im1.png", "im2.png"]
  jobs = folder.run_folder(str(todo), str(tmp_path / "run2"), CFG, seed=1, progress=False)
  assert [j.row["status"] for j in jobs] == ["done", "done"]
  assert records.keep(str(tmp_path / "run2"), keep) == 2
  assert records.todo(str(lr), keep, str(todo)) == 0 and not os.listdir(todo)
  rows = tables.load(keep)
  assert sorted(rows) == ["im0.png", "im1.png", "im2.png"]
  assert all(r["status"] == "done" and r["seconds"] > 0 for r in rows.values())
  # The killed run's pending rows do not hide the kept ones, in either order.
  for dirs in (f"{keep},{tmp_path / 'run1'}", f"{tmp_path / 'run1'},{keep}"):
    assert tables.load(dirs) == rows
  # Another seed is another run: refused.
  other = tmp_path / "run3"
  other.mkdir()
  manifest = (tmp_path / "run2" / "manifest.json").read_text().replace('"seed": 1', '"seed": 2')
  (other / "manifest.json").write_text(manifest)
  before = sorted(os.listdir(keep))
  with pytest.raises(SystemExit, match="settings"):
    records.keep(str(other), keep)
  assert sorted(os.listdir(keep)) == before and tables.load(keep) == rows


@pytest.mark.parametrize("s", [2, 3, 4])
def test_a_bicubic_window_is_the_window_of_the_whole_upscale(s):
  x = np.random.default_rng(s).uniform(-1, 1, (23, 31, 3))
  whole = records.bicubic_window(x, s, ((0, 23 * s), (0, 31 * s)), 8)
  ref = np.stack([image_io.from_model_range(resize.imresize(x[:, :, c], float(s), "matlab"), 8)
                  for c in range(3)], -1)
  np.testing.assert_array_equal(whole, ref)
  for win in (((0, 17), (5, 40)), ((9, 30), (31 * s - 19, 19)), ((s * 23 - 7, 7), (0, 31 * s))):
    (t, h), (l, w) = win
    np.testing.assert_array_equal(records.bicubic_window(x, s, win, 8), ref[t:t + h, l:l + w])


def test_filter_table_scores_a_record_and_refuses_one_made_from_another_file(tmp_path, capsys):
  import argparse
  import json
  table = _script("filter_table")
  rng = np.random.RandomState(1)
  lr_dir, gt_dir, rec_dir = tmp_path / "lr", tmp_path / "gt", tmp_path / "rec"
  for d in (lr_dir, gt_dir, rec_dir):
    d.mkdir()
  hr = rng.randint(0, 256, (48, 40, 3)).astype(np.uint8)
  Image.fromarray(hr).save(gt_dir / "a.png")
  Image.fromarray(hr[::2, ::2]).save(lr_dir / "a.png")
  score = {"psnr_y": 30.0, "ssim_y": 0.9}
  rec = {"input": image_io.file_fingerprint(str(lr_dir / "a.png")),
         "scores": {"bicubic": score, "ikejax": {"psnr_y": 31.0, "ssim_y": 0.91}},
         "timings": {"total_s": 5.0}}
  (rec_dir / "a_x2.json").write_text(json.dumps(rec))
  args = argparse.Namespace(records=str(rec_dir), lr=str(lr_dir), gt=str(gt_dir), scale=2,
                            append=None, seeds=[], title="t", better=True)
  table.main(args)
  assert "| a | 30.00 / 0.9000 |" in capsys.readouterr().out
  Image.fromarray(hr[1::2, 1::2]).save(lr_dir / "a.png")  # the LR is now another file
  with pytest.raises(SystemExit, match="made from another file"):
    table.main(args)


def test_method_table_puts_runs_side_by_side_and_marks_missing_images(tmp_path):
  import json
  table = _script("method_table")
  rng = np.random.RandomState(2)
  lr_dir, gt_dir = tmp_path / "lr", tmp_path / "gt"
  lr_dir.mkdir(), gt_dir.mkdir()
  runs = {"a": tmp_path / "a", "b": tmp_path / "b"}
  for d in runs.values():
    d.mkdir()
  for i, stem in enumerate(["im_2", "im_13"]):
    hr = rng.randint(0, 256, (48, 40, 3)).astype(np.uint8)
    Image.fromarray(hr).save(gt_dir / f"{stem}.png")
    Image.fromarray(hr[::2, ::2]).save(lr_dir / f"{stem}.png")
    for name, psnr in (("a", 30.0 + i), ("b", 20.0)):
      if name == "b" and stem == "im_13":
        continue  # b never ran im_13
      rec = {"input": image_io.file_fingerprint(str(lr_dir / f"{stem}.png")),
             "scores": {"bicubic": {"psnr_y": 25.0, "ssim_y": 0.8},
                        "ikejax": {"psnr_y": psnr, "ssim_y": 0.9}},
             "timings": {"total_s": 10.0 * (i + 1)}}
      (runs[name] / f"{stem}_x2.json").write_text(json.dumps(rec))
  loaded = {n: table.load_run(str(d), str(lr_dir), 2) for n, d in runs.items()}
  lines = table.table(loaded, str(lr_dir), str(gt_dir), 2)
  assert lines[2].startswith("| im_2 |") and lines[3].startswith("| im_13 |")
  assert lines[3].endswith("| 31.00 / 0.9000 | - |")
  assert "| 30.50 (2) | 20.00 (1) |" in lines[4]
  assert lines[5].endswith("| 2 of 2 | 0 of 1 |")
  assert lines[6].endswith("| 15 | 10 |")
