from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trimkit import data, models, train
from trimkit.data import ImageDataset
from trimkit.errors import TrimkitError
from trimkit.train import _fit as fit_module


def _small(split="train", count=512):
    return data.load("mnist5k", split).subset(count, seed=1)


def test_fit_learns_and_reports_each_epoch():
    train.seed_everything(0)
    model = models.create("lenet5")
    result = train.fit(model, _small(count=2000), _small("val", 300), epochs=3, batch_size=64, lr=0.05, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_top1"] > 85
    assert result.images_per_second > 0
    assert model.features[3].weight.is_contiguous()  # channels-last training leaves the layout as it found it


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, monkeypatch, precision):
    if precision == "bf16" and not train.cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    settings = dict(epochs=3, batch_size=128, lr=0.05, precision=precision, progress=False, seed=5)
    train.seed_everything(0)
    straight = models.create("lenet5")
    train.fit(straight, _small(), **settings)

    save_checkpoint = fit_module._save_checkpoint

    def killed_after_two_epochs(path, model, optim, config, result, epochs_done, *extra):
        save_checkpoint(path, model, optim, config, result, epochs_done, *extra)
        if epochs_done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "_save_checkpoint", killed_after_two_epochs)
    train.seed_everything(0)
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train.fit(models.create("lenet5"), _small(), **settings, checkpoint=checkpoint)
    monkeypatch.setattr(fit_module, "_save_checkpoint", save_checkpoint)
    resumed_model = models.create("lenet5")
    result = train.fit(resumed_model, _small(), **settings, checkpoint=checkpoint, resume=True)
    assert result.resumed_from_epoch == 2
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_with_other_options_is_refused(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    train.fit(models.create("lenet5"), _small(count=64), epochs=1, lr=0.05, checkpoint=checkpoint, progress=False)
    with pytest.raises(TrimkitError, match=r"written with lr=0.05, and now lr=0.1"):
        train.fit(models.create("lenet5"), _small(count=64), epochs=1, lr=0.1, checkpoint=checkpoint, resume=True,
                  progress=False)


def test_resume_from_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.ckpt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(TrimkitError, match="not a trimkit training checkpoint"):
        train.fit(models.create("lenet5"), _small(count=64), epochs=1, checkpoint=bad, resume=True, progress=False)


@pytest.mark.parametrize("name, expected", [
    ("constant", [0.1, 0.1, 0.1]),
    ("step", [0.1, 0.1 * 0.5, 0.1 * 0.25]),
    ("exponential", [0.1, 0.1 * 0.5, 0.1 * 0.25]),
])
def test_schedules_by_hand(name, expected):
    step_size = 1
    got = [train.learning_rate(name, 0.1, epoch, 3, step_size, 0.5) for epoch in (0, 1, 2)]
    assert got == pytest.approx(expected)


def test_cosine_schedule_by_hand():
    assert train.learning_rate("cosine", 0.2, 0, 4, 1, 0.1) == pytest.approx(0.2)
    assert train.learning_rate("cosine", 0.2, 1, 4, 1, 0.1) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert train.learning_rate("cosine", 0.2, 4, 4, 1, 0.1) == pytest.approx(0.0)


def test_step_schedule_decays_every_step_size_epochs():
    assert [train.learning_rate("step", 1.0, e, 10, 3, 0.1) for e in (0, 2, 3, 6)] == pytest.approx([1, 1, 0.1, 0.01])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_each_optimizer_trains(optimizer):
    train.seed_everything(0)
    model = models.create("lenet5")
    before = model.features[0].weight.clone()
    train.fit(model, _small(count=128), epochs=1, optimizer=optimizer, lr=1e-3, progress=False)
    assert not torch.equal(before, model.features[0].weight)


def test_bad_settings_are_clear_errors():
    with pytest.raises(TrimkitError, match="optimizer: 'rmsprop': input should be 'auto', 'sgd', 'adam' or 'adamw'"):
        train.fit(models.create("lenet5"), _small(count=64), epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(TrimkitError, match="schedule: 'linear': input should be 'constant', 'step', 'cosine'"):
        train.fit(models.create("lenet5"), _small(count=64), epochs=1, schedule="linear", progress=False)
    with pytest.raises(TrimkitError, match="precision: 'fp8': input should be 'auto', 'bf16' or 'fp32'"):
        train.fit(models.create("lenet5"), _small(count=64), epochs=1, precision="fp8", progress=False)


class _FixedScores(nn.Module):
    """Returns the scores stored for each image, keyed by the image's first pixel."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        index = (x[:, 0, 0, 0] * 255).round().long()
        return self.scores[index] + self.anchor


def test_evaluate_counts_top1_top5_and_loss_by_hand():
    count, classes = 6, 7
    images = torch.zeros(count, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(count, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    scores = torch.zeros(count, classes)
    scores[0, 0] = 5  # right
    scores[1, 1] = 5  # right
    scores[2, :] = torch.tensor([7, 6, 5, 4, 3, 2, 1.0])  # label 2 ranks third: top-5 only
    scores[3, :] = torch.tensor([7, 6, 5, 4, 3, 2, 1.0])  # label 3 ranks fourth: top-5 only
    scores[4, :] = torch.tensor([7, 6, 5, 4, 3, 2, 1.0])  # label 4 ranks fifth: top-5 only
    scores[5, :] = torch.tensor([7, 6, 5, 4, 3, 2, 1.0])  # label 5 ranks sixth: missed
    dataset = ImageDataset("toy", "val", images, labels, tuple("abcdefg"), ((0.0,), (1.0,)))
    model = _FixedScores(scores).train()
    metrics = train.evaluate(model, dataset, batch_size=4, channels_last=False)
    assert metrics["top1"] == pytest.approx(100 * 2 / 6)
    assert metrics["top5"] == pytest.approx(100 * 5 / 6)
    assert metrics["loss"] == pytest.approx(float(nn.functional.cross_entropy(scores, labels)), rel=1e-6)
    assert metrics["n"] == 6
    assert model.training


def test_bf16_is_chosen_only_where_the_cpu_has_it():
    expected = "bf16" if train.cpu_has_native_bf16() else "fp32"
    assert train.resolve_precision("auto", torch.device("cpu")) == expected
    assert train.resolve_precision("fp32", torch.device("cpu")) == "fp32"


class _NoNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("max_grad_norm, clipped", [("auto", True), (None, False), (0.5, True)])
def test_auto_clips_the_gradients_of_models_without_normalisation_layers(max_grad_norm, clipped):
    """One SGD step (Nesterov, momentum 0.9) moves the weights by lr * 1.9 * the gradient:
    clipped to norm 2 (auto) that is 0.38 at lr 0.1, whatever the loss's scale."""
    torch.manual_seed(0)
    model = _NoNorm()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train.fit(model, _small(count=64), None, epochs=1, batch_size=64, lr=0.1, schedule="constant", weight_decay=0.0,
              precision="fp32", augment=False, progress=False, max_grad_norm=max_grad_norm,
              loss_fn=lambda inputs, outputs, targets: 1000 * nn.functional.cross_entropy(outputs, targets))
    moved = float((torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm())
    limit = {"auto": 2.0, 0.5: 0.5}.get(max_grad_norm)
    if clipped:
        assert moved == pytest.approx(0.1 * 1.9 * limit, rel=1e-4)
    else:
        assert moved > 10 * 0.1 * 1.9 * 2.0
    assert train.FitOptions.of(None, epochs=1).grad_norm_limit(normalized=True) is None


def test_a_diverging_run_stops_at_the_first_loss_that_is_not_finite_with_the_cause():
    torch.manual_seed(0)
    with pytest.raises(train.TrainingFailed, match=r"^training stopped: the loss is (nan|inf) in epoch 1, step \d+ "
                                                   r"\(lr 1e\+06\); likely cause: lr 1000000.0 \(sgd\) for a model "
                                                   r"without normalisation layers; lower lr"):
        train.fit(_NoNorm(), _small(count=256), None, epochs=2, batch_size=32, lr=1e6, max_grad_norm=None,
                  schedule="constant",
                  precision="fp32", progress=False)
    assert train.TrainingFailed.exit_code == 3 and issubclass(train.TrainingFailed, TrimkitError)


@pytest.mark.parametrize("name, optimizer, lr", [
    ("lenet5", "sgd", 0.05),      # no normalisation, 5 layers: SGD trains it best
    ("vgg_b", "adam", 0.001),     # no normalisation, 11 layers: SGD leaves it at chance
    ("resnet20", "sgd", 0.05),    # batch norm
])
def test_auto_optimizer_and_lr_follow_the_model(name, optimizer, lr):
    from trimkit import models
    from trimkit.train import FitOptions

    resolved = FitOptions(epochs=1).for_model(models.create(name))
    assert (resolved.optimizer, resolved.lr) == (optimizer, lr)
    named = FitOptions(epochs=1, optimizer="adamw").for_model(models.create(name))
    assert (named.optimizer, named.lr) == ("adamw", 0.001)
    assert FitOptions(epochs=1, lr=0.2).for_model(models.create(name)).lr == 0.2


def test_auto_batch_follows_the_task_kind(tmp_path):
    from trimkit import models, tasks
    from trimkit.train import FitOptions

    model = models.create("lenet5")
    mnist = data.load("mnist5k", "val")
    assert FitOptions(epochs=1).for_model(model, tasks.classification(mnist, mnist)).batch_size == 128
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    masks = data.SegmentationDataset("t", "train", images, torch.zeros(4, 8, 8, dtype=torch.uint8), ("a", "b"))
    assert FitOptions(epochs=1).for_model(model, tasks.segmentation(masks, masks)).batch_size == 16
    assert FitOptions(epochs=1).for_model(model).batch_size == 128
    assert FitOptions(epochs=1, batch_size=7).for_model(model, tasks.segmentation(masks, masks)).batch_size == 7


def test_auto_optimizer_of_a_tracking_task_is_adam_whatever_the_model():
    from trimkit.tasks.tracking import TrackingTask
    from trimkit.train import FitOptions

    class Tracking:  # the task kind's defaults, without sequences on disk
        default_batch_size = TrackingTask.default_batch_size
        default_optimizer = TrackingTask.default_optimizer

    resolved = FitOptions(epochs=1).for_model(models.create("resnet20"), Tracking())
    assert (resolved.optimizer, resolved.lr, resolved.batch_size) == ("adam", 0.001, 16)
    assert FitOptions(epochs=1, optimizer="sgd").for_model(models.create("resnet20"), Tracking()).optimizer == "sgd"
