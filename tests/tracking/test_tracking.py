"""Tracking: metrics against hand computation, loaders of the three layouts, bad input,
SiamFC's labels and loss, the tracker and its CLI, and the example recipe at a tiny budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import SHARED_DATA, requires_shared_data
from trimkit import models, pipeline, tracking, train
from trimkit.cli._app import app
from trimkit.errors import TrimkitError
from trimkit.tasks.tracking import balanced_logistic_loss, peak_offsets, score_labels, tracking_task

ROOT = Path(__file__).resolve().parents[2]
TRACKING = SHARED_DATA / "tracking"
runner = CliRunner()

PREDICTED = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [20, 0, 10, 10]], dtype=float)
TRUTH = np.array([[0, 0, 10, 10]] * 3, dtype=float)


def test_centre_errors_and_ious_by_hand():
    assert tracking.centre_errors(PREDICTED, TRUTH) == pytest.approx([0.0, math.sqrt(50), 20.0])
    assert tracking.ious(PREDICTED, TRUTH) == pytest.approx([1.0, 25 / 175, 0.0])
    assert tracking.precision_at(tracking.centre_errors(PREDICTED, TRUTH)) == pytest.approx(1.0)
    assert tracking.precision_at(tracking.centre_errors(PREDICTED, TRUTH), 10.0) == pytest.approx(2 / 3)


def test_success_curve_and_area_by_hand():
    overlaps = tracking.ious(PREDICTED, TRUTH)
    curve = tracking.success_curve(overlaps)
    # thresholds 0, .05, .10: IoU 1 and 1/7 pass; .15 ... .95: only 1; 1.0: none (IoU must exceed it)
    assert curve == pytest.approx([2 / 3] * 3 + [1 / 3] * 17 + [0.0])
    assert tracking.success_auc(overlaps) == pytest.approx((3 * 2 / 3 + 17 / 3) / 21)
    scores = tracking.score_boxes(PREDICTED, TRUTH)
    assert scores.mean_iou == pytest.approx((1 + 1 / 7) / 3)
    assert scores.centre_error == pytest.approx((math.sqrt(50) + 20) / 3)
    pooled = tracking.pool_scores([scores, tracking.score_boxes(TRUTH[:1], TRUTH[:1])])
    assert pooled.frames == 4 and pooled.mean_iou == pytest.approx((1 + 1 / 7 + 1) / 4)


def test_polygon_rules():
    square = np.array([5, 0, 10, 5, 5, 10, 0, 5], dtype=float)  # a square of side sqrt(50), turned 45 degrees
    assert tracking.polygon_to_box(square) == pytest.approx([0, 0, 10, 10])
    side = math.sqrt(0.5) * 10 + 1  # area kept: 50 = s^2 * 100, then SiamFC's one pixel
    assert tracking.polygon_to_box(square, "area") == pytest.approx([5 - side / 2, 5 - side / 2, side, side])
    assert tracking.polygon_to_box(np.array([1, 2, 3, 4.0])) == pytest.approx([1, 2, 3, 4])


def _frames(folder: Path, count: int, names: str = "{:04d}.png", size=(64, 48)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", size, (index * 20, 90, 160)).save(folder / names.format(index + 1))


def test_otb_vot_and_got10k_layouts(tmp_path):
    otb = tmp_path / "otb"
    _frames(otb / "img", 3)
    (otb / "groundtruth_rect.txt").write_text("1\t2\t10\t12\n2\t3\t10\t12\n3\t4\t10\t12\n")
    vot = tmp_path / "vot"
    _frames(vot, 2, "{:08d}.png")
    (vot / "groundtruth.txt").write_text("5,0,10,5,5,10,0,5\n6,1,11,6,6,11,1,6\n")
    got = tmp_path / "got"
    _frames(got, 2, "{:08d}.png")
    (got / "groundtruth.txt").write_text("1.5,2.5,20,10\n2,3,20,10\n")
    sequences = tracking.load_sequences(tmp_path)
    assert [s.name for s in sequences] == ["got", "otb", "vot"]
    got_seq, otb_seq, vot_seq = sequences
    assert otb_seq.boxes.tolist() == [[1, 2, 10, 12], [2, 3, 10, 12], [3, 4, 10, 12]]
    assert vot_seq.boxes.tolist() == [[0, 0, 10, 10], [1, 1, 10, 10]]
    assert got_seq.boxes[0].tolist() == [1.5, 2.5, 20, 10]
    assert otb_seq.frame(1).shape == (48, 64, 3) and otb_seq.frame(1)[0, 0, 0] == 20


@requires_shared_data("tracking")
def test_shared_vot_polygons_give_the_shared_uniform_boxes():
    sphere = TRACKING / "vot14_sphere"
    polygons = tracking.read_boxes(sphere / "groundtruth.txt")
    uniform = tracking.load_sequence(sphere, check=False)
    assert len(uniform) == 201 and np.allclose(polygons, uniform.boxes, atol=0.01)
    bag = tracking.load_sequence(TRACKING / "vot15_bag", check=False)
    assert len(bag) == 196 and bag.files[0].name == "00000001.jpg"
    first = [291.827, 203.603, 396.382, 264.289, 442.173, 185.397, 337.618, 124.711]
    assert bag.boxes[0] == pytest.approx([291.827, 124.711, 442.173 - 291.827, 264.289 - 124.711])
    assert tracking.polygon_to_box(np.array(first)) == pytest.approx(bag.boxes[0])


@pytest.mark.parametrize("lines, frames, message", [
    ("1,2,10,12\n2,3,10,12\n", 3, "2 boxes for 3 frames"),
    ("1,2,10,12\n2,3,10,12\n3,4,10,12\n4,5,10,12\n", 3, "4 boxes but only 3 frames"),
    ("1,2,10,12\n2,3,0,12\n3,4,10,12\n", 3, "frame 2: box 2,3,0,12 has zero size"),
    ("1,2,10,12\n200,3,10,12\n3,4,10,12\n", 3, "frame 2: box 200,3,10,12 lies outside the 64x48 image"),
    ("1,2,10,12\nNaN,3,10,12\n3,4,10,12\n", 3, "line 2: the box is not finite"),
    ("1,2,10\n", 1, "line 1: 3 values"),
])
def test_bad_boxes_are_one_line(tmp_path, lines, frames, message):
    _frames(tmp_path / "img", frames)
    (tmp_path / "groundtruth_rect.txt").write_text(lines)
    with pytest.raises(TrimkitError, match=message.replace("(", r"\(")) as error:
        tracking.load_sequence(tmp_path)
    assert "\n" not in str(error.value)


def test_unreadable_frame_is_one_line(tmp_path):
    _frames(tmp_path / "img", 2)
    (tmp_path / "img" / "0002.png").write_bytes(b"not a jpeg")
    (tmp_path / "groundtruth_rect.txt").write_text("1,2,10,12\n2,3,10,12\n")
    with pytest.raises(TrimkitError, match=r"frame .*0002.png cannot be read as an image"):
        tracking.load_sequence(tmp_path)


def test_labels_and_balanced_loss_by_hand():
    labels = score_labels(5, 8, torch.tensor([[0.0, 0.0], [8.0, 0.0]]), radius=8.0)
    # radius 8 px at stride 8: the centre cell and its 4 neighbours
    assert labels[0, 0].sum() == 5 and labels[0, 0, 2, 2] == 1 and labels[0, 0, 1, 1] == 0
    assert labels[1, 0, 2, 3] == 1 and labels[1, 0].sum() == 5
    assert balanced_logistic_loss(torch.zeros(2, 1, 5, 5), labels).item() == pytest.approx(math.log(2))
    # a confident right answer: positives at +10, negatives at -10
    confident = labels * 20 - 10
    assert balanced_logistic_loss(confident, labels).item() == pytest.approx(math.log1p(math.exp(-10)),
                                                                             rel=0.01)  # float32
    assert peak_offsets(confident, 8)[1].tolist() in ([8.0, 0.0], [0.0, 0.0], [16.0, 0.0], [8.0, -8.0], [8.0, 8.0])


def _generated(count: int = 3, frames: int = 24) -> list[tracking.Sequence]:
    rng = np.random.default_rng(0)
    sequences = []
    for index in range(count):
        # a smooth random background and a high-contrast textured object
        back = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8)
        target = np.kron(rng.integers(0, 255, (4, 4, 3)), np.ones((10, 10, 1))).astype(np.uint8)
        sequences.append(tracking.generate_sequence(back, target, frames=frames, seed=index, name=f"g{index}"))
    return sequences


def test_generated_sequence_boxes_are_where_the_object_was_pasted():
    back = np.zeros((60, 80, 3), dtype=np.uint8)
    target = np.full((8, 8, 3), 255, dtype=np.uint8)
    sequence = tracking.generate_sequence(back, target, frames=10, size=(160, 120), object_size=(20, 16))
    assert len(sequence) == 10 and sequence.frame(0).shape == (120, 160, 3)
    for index in range(10):
        x, y, w, h = sequence.boxes[index].astype(int)
        frame = sequence.frame(index)
        assert (frame[y:y + h, x:x + w] == 255).all()
        assert (frame == 255).all(axis=2).sum() == w * h  # nothing of the object outside its box
    assert np.any(sequence.boxes[0] != sequence.boxes[-1])


def test_tracker_returns_one_box_per_frame_starting_with_the_given_one():
    sequence = _generated(1, 4)[0]
    model = models.create("siamfc", width=0.125, features=32)
    result = tracking.track(model, sequence, tracking.TrackerParams(scales=3))
    assert result.boxes.shape == (4, 4) and result.boxes[0].tolist() == sequence.boxes[0].tolist()
    assert result.timings.frames == 3 and result.fps > 0


def test_tracker_on_onnx_runtime_backbones_gives_the_same_boxes(tmp_path):
    import onnxruntime

    from trimkit import export

    model = models.create("siamfc", width=0.125, features=32).eval()
    runs = {}
    for side in (127, 255):
        export.onnx(model.backbone, torch.zeros(1, 3, side, side), tmp_path / f"backbone{side}.onnx")
        session = onnxruntime.InferenceSession(str(tmp_path / f"backbone{side}.onnx"),
                                               providers=["CPUExecutionProvider"])
        runs[side] = lambda x, s=session: s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
    sequence = _generated(1, 4)[0]
    reference = tracking.track(model, sequence).boxes
    deployed = tracking.track(model, sequence, embed=runs[255], embed_exemplar=runs[127]).boxes
    assert np.allclose(deployed, reference, atol=1e-3)


def test_tracker_params_reject_even_scales():
    with pytest.raises(ValueError, match="scales: 4 is even"):
        tracking.TrackerParams(scales=4)


def test_track_refuses_a_model_that_is_not_a_tracker():
    with pytest.raises(TrimkitError, match="is a lenet5 model, not a Siamese tracker"):
        tracking.track(models.create("lenet5"), _generated(1, 2)[0])


def _otb_folder(sequence: tracking.Sequence, folder: Path) -> Path:
    (folder / "img").mkdir(parents=True)
    for index in range(len(sequence)):
        Image.fromarray(sequence.frame(index)).save(folder / "img" / f"{index + 1:04d}.png")
    (folder / "groundtruth_rect.txt").write_text("".join(",".join(f"{v:g}" for v in box) + "\n"
                                                         for box in sequence.boxes))
    return folder


def test_cli_track_writes_a_box_per_frame_and_a_gif(tmp_path):
    sequence = _generated(1, 3)[0]
    folder = _otb_folder(sequence, tmp_path / "seq")
    model = tmp_path / "tracker.pt"
    import trimkit

    trimkit.save(models.create("siamfc", width=0.125, features=32), model)
    result = runner.invoke(app, ["track", str(model), "--sequence", str(folder), "--out", str(tmp_path / "b.txt"),
                                 "--show"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "b.txt").read_text().splitlines()
    assert len(lines) == 3 and [float(v) for v in lines[0].split(",")] == sequence.boxes[0].tolist()
    with Image.open(tmp_path / "b.gif") as gif:
        assert gif.n_frames == 3


def test_cli_track_bad_input_is_one_line_and_exit_2(tmp_path):
    sequence = _generated(1, 3)[0]
    folder = _otb_folder(sequence, tmp_path / "seq")
    result = runner.invoke(app, ["track", "lenet5", "--sequence", str(folder)])
    assert result.exit_code == 2 and "not a Siamese tracker" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (folder / "groundtruth_rect.txt").write_text("1,2,10,12\n")
    result = runner.invoke(app, ["track", "siamfc", "--sequence", str(folder)])
    assert result.exit_code == 2 and "1 boxes for 3 frames" in result.output


def test_cli_eval_tracking_prints_the_scores(tmp_path):
    sequence = _generated(1, 3)[0]
    _otb_folder(sequence, tmp_path / "data" / "seq")
    result = runner.invoke(app, ["eval", "siamfc", "--data", f"tracking:{tmp_path / 'data'}", "--json"])
    assert result.exit_code == 0, result.output
    import json

    record = json.loads(result.stdout)
    assert set(record) >= {"precision", "success_auc", "mean_iou", "fps", "sequences"}
    assert record["frames"] == 3 and record["sequences"]["seq"]["frames"] == 3


@pytest.fixture(scope="module")
def trained_tracker():
    """A narrow SiamFC trained briefly on three generated sequences; the fourth is held out."""
    sequences = _generated(4, 30)
    torch.manual_seed(0)
    model = models.create("siamfc", width=0.125, features=32)
    task = tracking_task(sequences[:3], [], sequences[3:], model=model, pairs_per_epoch=128, val_pairs=32)
    train.fit(model, task, epochs=4, batch_size=8, lr=1e-3, optimizer="adam", progress=False)
    return model, task, sequences[3:]


@pytest.mark.slow
def test_a_briefly_trained_tracker_beats_one_that_never_moves(trained_tracker):
    model, _, held_out = trained_tracker
    trained = tracking.evaluate_tracker(model, held_out).pooled
    held = held_out[0]
    still = tracking.score_boxes(np.repeat(held.boxes[:1], len(held), axis=0), held.boxes)
    assert trained.precision >= 0.9 and still.precision <= 0.5
    assert trained.success_auc > still.success_auc + 0.3


@pytest.mark.slow
def test_the_tracker_still_tracks_after_pruning_and_quantisation(trained_tracker):
    from trimkit import prune, quant

    model, task, held_out = trained_tracker
    held = held_out[0]
    still = tracking.score_boxes(np.repeat(held.boxes[:1], len(held), axis=0), held.boxes)
    pruned = prune.structured(model, task.example_inputs(2), ratio=0.25).model
    train.fit(pruned, task, epochs=1, batch_size=8, lr=5e-4, optimizer="adam", progress=False)
    quantized = quant.quantize(model, "first=int8,hidden=int8,last=int8,act=int8", task)
    for changed in (pruned, quantized):
        scores = tracking.evaluate_tracker(changed, held_out).pooled
        assert scores.precision >= still.precision + 0.25 and scores.success_auc >= still.success_auc + 0.2


@requires_shared_data("tracking", "camvid")
def test_example_recipe_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    tiny = ["stages.0.epochs=1", "stages.0.batch_size=4", "task.tracking.pairs_per_epoch=8",
            "task.tracking.val_pairs=4", "task.tracking.stills_limit=8", "task.tracking.eval_frames=3",
            f"task.data_dir={SHARED_DATA}"]
    recipe = pipeline.load_recipe(ROOT / "examples" / "recipes" / "siamfc-shared-data.yaml", tiny)
    result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    stages = [r.stage for r in result.log.records]
    assert stages[1:-1] == ["train", "track"]
    tracked = result.log.records[-1].measurement
    assert {m.name for m in tracked.metrics} >= {"precision", "success_auc", "mean_iou", "fps", "pair_precision"}
    assert tracked.metric("precision").samples == 6  # two held-out sequences, 3 frames each
    assert result.context.task.data_name("val") == "tracking"


@requires_shared_data("tracking")
@pytest.mark.parametrize("overrides, message", [
    (["task.tracking.eval_sequences=[]"], "eval_sequences: none given; hold out at least one sequence"),
    (["task.tracking.eval_sequences=[vot15_bag]"], "vot15_bag also train"),
    (["task.tracking.eval_sequences=[nosuch]"], "no sequence nosuch in"),
    (["task.tracking.tracker.scales=4"], "scales: 4 is even"),
])
def test_bad_tracking_recipes_are_one_line(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(ROOT)
    with pytest.raises(TrimkitError, match=message) as error:
        recipe = pipeline.load_recipe(ROOT / "examples" / "recipes" / "siamfc-shared-data.yaml",
                                      [*overrides, f"task.data_dir={SHARED_DATA}"])
        pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    assert "\n" not in str(error.value)
