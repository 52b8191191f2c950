"""Knowledge distillation: losses against hand computation, hooks and adapters, the
teacher without gradients, recipes and the CLI, bad input, and a distilled student
that beats the same student trained alone."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import trimkit
from trimkit import data, distill, models, pipeline, tasks, train
from trimkit.cli import app
from trimkit.distill.kd import attention_loss, attention_map, hint_loss, kd_loss, soft_target_loss
from trimkit.errors import TrimkitError

runner = CliRunner()


class Tiny(nn.Module):
    """Two convolutions and a head; ``width`` sets the channels of the second."""

    def __init__(self, width: int = 4, classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, width, 3, padding=1, stride=2)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


def _mnist(train_count: int = 256, val_count: int = 200):
    return data.load("mnist5k", "train").subset(train_count), data.load("mnist5k", "val").subset(val_count)


# --- losses against hand computation -------------------------------------------------


def _softmax(row, temperature):
    exps = [math.exp(v / temperature) for v in row]
    return [e / sum(exps) for e in exps]


def test_soft_target_loss_is_t_squared_times_the_kl_of_the_softened_distributions():
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    temperature = 2.0
    kls = []
    for s_row, t_row in zip(student, teacher):
        p, q = _softmax(t_row, temperature), _softmax(s_row, temperature)
        kls.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)))
    expected = temperature**2 * sum(kls) / 2
    got = soft_target_loss(torch.tensor(student), torch.tensor(teacher), temperature)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert float(soft_target_loss(torch.tensor(teacher), torch.tensor(teacher), 3.0)) == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_weights_the_soft_term_by_alpha_and_the_hard_term_by_one_minus_alpha():
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([1, 2])
    hard = nn.functional.cross_entropy(student, labels)
    # cross-entropy by hand: -log softmax(student)[label], averaged
    by_hand = -(math.log(_softmax([1.0, 2.0, 0.5], 1)[1]) + math.log(_softmax([0.0, -1.0, 3.0], 1)[2])) / 2
    assert float(hard) == pytest.approx(by_hand, rel=1e-6)
    soft = float(soft_target_loss(student, teacher, 4.0))
    got = kd_loss(student, teacher, hard, temperature=4.0, alpha=0.3)
    assert float(got) == pytest.approx(0.3 * soft + 0.7 * by_hand, rel=1e-6)
    assert float(kd_loss(student, teacher, hard, temperature=4.0, alpha=0.0)) == pytest.approx(by_hand, rel=1e-6)
    assert float(kd_loss(student, teacher, hard, temperature=4.0, alpha=1.0)) == pytest.approx(soft, rel=1e-6)


def test_dense_outputs_count_every_position_as_a_sample():
    student = torch.randn(2, 5, 3, 4)
    teacher = torch.randn(2, 5, 3, 4)
    flat_s = student.permute(0, 2, 3, 1).reshape(-1, 5)
    flat_t = teacher.permute(0, 2, 3, 1).reshape(-1, 5)
    assert float(soft_target_loss(student, teacher, 2.0)) == pytest.approx(
        float(soft_target_loss(flat_s, flat_t, 2.0)), rel=1e-6)


def test_attention_map_and_loss_by_hand():
    # one sample, two channels, 1x2 positions: mean over channels of squares = [(1+9)/2, (4+0)/2] = [5, 2]
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    norm = math.sqrt(25 + 4)
    assert attention_map(features)[0].tolist() == pytest.approx([5 / norm, 2 / norm])
    other = torch.tensor([[[[1.0, 0.0]]]])  # one channel: map [1, 0]
    expected = ((5 / norm - 1) ** 2 + (2 / norm) ** 2) / 2
    assert float(attention_loss(features, other)) == pytest.approx(expected, rel=1e-6)


def test_hint_loss_pools_the_larger_map_to_the_smaller():
    student = torch.arange(16.0).reshape(1, 1, 4, 4)
    teacher = torch.zeros(1, 1, 2, 2)
    pooled = nn.functional.avg_pool2d(student, 2)  # [[2.5, 4.5], [10.5, 12.5]]
    assert float(hint_loss(student, teacher)) == pytest.approx(float(pooled.pow(2).mean()))


# --- hooks, adapters, the teacher ----------------------------------------------------


def test_hint_adapter_is_trained_with_the_student_and_the_teacher_gets_no_gradients():
    train_set, val_set = _mnist(128, 64)
    teacher, student = Tiny(width=8), Tiny(width=4)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    links = distill.parse_links({"conv2": "conv2"}, {"conv1": "conv1"})
    distiller = distill.Distiller(teacher, temperature=2.0, alpha=0.5, links=links, teacher_precision="fp32")
    task = tasks.classification(train_set, val_set)
    with distiller.prepare(student, task.example_inputs(8), task.loss):
        adapter = distiller.adapters["conv2->conv2"]
        assert isinstance(adapter, nn.Conv2d) and adapter.kernel_size == (1, 1)
        assert (adapter.in_channels, adapter.out_channels) == (4, 8) and len(distiller.adapters) == 1
        adapter_before = adapter.weight.detach().clone()
        train.fit(student, task, epochs=1, batch_size=32, lr=0.05, precision="fp32", progress=False,
                  loss_fn=distiller, extra_modules=[distiller.adapters])
        assert set(distiller.last_terms) == {"hard", "soft", "teacher_right", "hint:conv2", "attention:conv1"}
        assert not torch.equal(adapter.weight.detach(), adapter_before)
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    # the teacher comes back as it was given: trainable, in training mode (a pruned copy of it may be trained next)
    assert all(p.requires_grad for p in teacher.parameters()) and teacher.training
    # the hooks come off with the block
    assert all(not m._forward_hooks for m in [*teacher.modules(), *student.modules()])


def test_adapters_are_checkpointed_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    train_set, val_set = _mnist(64, 32)
    task = tasks.classification(train_set, val_set)

    class Stop(Exception):
        pass

    def stop_at_second_epoch(epoch, model):
        if epoch == 1:
            raise Stop

    def run(checkpoint, hook=None, resume=False):
        torch.manual_seed(0)
        teacher, student = Tiny(width=8), Tiny(width=4)
        distiller = distill.Distiller(teacher, links=distill.parse_links({"conv2": "conv2"}), teacher_precision="fp32")
        with distiller.prepare(student, task.example_inputs(8), task.loss):
            train.fit(student, task, epochs=2, batch_size=32, precision="fp32", progress=False, loss_fn=distiller,
                      extra_modules=[distiller.adapters], checkpoint=checkpoint, resume=resume, on_epoch_start=hook)
        return student, distiller.adapters

    straight_student, straight_adapters = run(tmp_path / "straight.ckpt")
    with pytest.raises(Stop):
        run(tmp_path / "cut.ckpt", hook=stop_at_second_epoch)
    state = torch.load(tmp_path / "cut.ckpt", weights_only=True)
    assert state["epochs_done"] == 1 and list(state["extra_modules"][0]) == ["conv2->conv2.weight"]
    resumed_student, resumed_adapters = run(tmp_path / "cut.ckpt", resume=True)
    for straight, resumed in ((straight_student, resumed_student), (straight_adapters, resumed_adapters)):
        assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_equal_channels_need_no_adapter_and_teacher_and_student_may_differ_in_architecture():
    train_set, val_set = _mnist(64, 32)
    teacher = models.create("lenet5")
    student = Tiny(width=16)
    links = distill.parse_links({"conv2": "features.3"})  # 16 channels each, 7x7 vs 10x10 maps
    distiller = distill.Distiller(teacher, links=links, teacher_precision="fp32")
    task = tasks.classification(train_set, val_set)
    with distiller.prepare(student, task.example_inputs(4), task.loss):
        assert len(distiller.adapters) == 0
        loss = distiller(task.example_inputs(4), student(*task.example_inputs(4)), torch.tensor([0, 1, 2, 3]))
        loss.backward()
    assert student.conv2.weight.grad is not None and all(p.grad is None for p in teacher.parameters())


def test_teacher_precision_is_chosen_by_a_check_and_recorded():
    teacher = models.create("lenet5").eval()
    inputs = (data.load("mnist5k", "val").example_inputs(32),)
    assert distill.choose_precision(teacher, inputs, "fp32").precision == "fp32"
    choice = distill.choose_precision(teacher, inputs, "auto", repeats=2)
    assert choice.precision in ("fp32", "bf16") and choice.reason
    if choice.precision == "bf16":
        assert choice.agreement >= 0.99 and choice.fp32_seconds >= 1.1 * choice.bf16_seconds
    elif choice.agreement is not None:  # measured, and bf16 lost on one of the two counts
        assert choice.agreement < 0.99 or choice.fp32_seconds < 1.1 * choice.bf16_seconds
    with pytest.raises(TrimkitError, match="unknown teacher precision 'fp16'"):
        distill.choose_precision(teacher, inputs, "fp16")


def test_memo_runs_the_teacher_once_per_image_without_augmentation():
    train_set, val_set = _mnist(96, 32)
    seen = []
    teacher = Tiny(width=8)
    teacher.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    student = Tiny(width=4)
    result, distiller = distill.distill(student, teacher, train_set, val_set, memo=True, teacher_precision="fp32",
                                        epochs=3, batch_size=32, augment=False, progress=False, precision="fp32")
    assert len(result.history) == 3 and len(distiller.memo) == 96
    assert sum(seen) == 32 + 96  # the check on one batch, then each image once


# --- bad input -----------------------------------------------------------------------


def test_bad_input_is_one_line_naming_the_problem_and_the_fix():
    train_set, val_set = _mnist(64, 32)
    task = tasks.classification(train_set, val_set)
    example = task.example_inputs(4)
    with pytest.raises(TrimkitError, match=r"teacher predicts 5 classes and the student 10: give a teacher trained "
                                           r"for the same 10 classes"):
        distill.Distiller(Tiny(classes=5)).prepare(Tiny(), example, task.loss)

    class Dense(nn.Module):
        def forward(self, x):
            return x.new_zeros(len(x), 10, 2)

    with pytest.raises(TrimkitError, match=r"shape \(4, 10, 2\) and the student's \(4, 10\)"):
        distill.Distiller(Dense()).prepare(Tiny(), example, task.loss)
    with pytest.raises(TrimkitError, match=r"the student has no layer 'conv3'; did you mean 'conv2'\?"):
        distill.Distiller(Tiny(), links=distill.parse_links({"conv3": "conv1"})).prepare(Tiny(), example, task.loss)
    with pytest.raises(TrimkitError, match=r"the teacher has no layer 'features.9'; did you mean 'features\.\d'\?"):
        distill.Distiller(models.create("lenet5"), links=distill.parse_links({"conv1": "features.9"})).prepare(
            Tiny(), example, task.loss)
    with pytest.raises(TrimkitError, match=r"^kd temperature: 0 is not a temperature; give a number > 0"):
        distill.Distiller(Tiny(), temperature=0)
    with pytest.raises(TrimkitError, match=r"^kd alpha: 1.5 is outside \[0, 1\]; alpha weights the distillation"):
        distill.Distiller(Tiny(), alpha=1.5)
    with pytest.raises(TrimkitError, match=r"kd temperature: -1 is not a temperature"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor(0.0), temperature=-1, alpha=0.5)


def _recipe(stages):
    return {"model": {"name": "lenet5"}, "task": {"data": "mnist5k", "train_samples": 128, "val_samples": 64},
            "stages": stages}


@pytest.mark.parametrize("stage, message", [
    ({"stage": "finetune", "epochs": 1, "teacher": "original", "kd_alpha": 2},
     "stages[0].kd_alpha: 2.0 is outside [0, 1]"),
    ({"stage": "finetune", "epochs": 1, "teacher": "original", "kd_temperature": 0},
     "stages[0].kd_temperature: 0.0 is not a temperature"),
    ({"stage": "distill", "epochs": 1, "teacher": None}, "stage distill needs a teacher"),
    ({"stage": "finetune", "epochs": 1, "hints": {"features.3": "features.3"}}, "hints and attention need a teacher"),
])
def test_bad_distillation_options_in_recipes(stage, message):
    with pytest.raises(pipeline.RecipeError) as error:
        pipeline.parse_recipe(_recipe([stage]))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_teacher_that_names_nothing_is_one_line(tmp_path):
    recipe = pipeline.parse_recipe(_recipe([{"stage": "distill", "epochs": 1, "teacher": "big"}]))
    with pytest.raises(TrimkitError, match=r"teacher 'big' is neither a model of this run \(known: original\) nor a "
                                           r"model file"):
        pipeline.run_recipe(recipe, tmp_path / "run", progress=False)


# --- recipes and the CLI ---------------------------------------------------------------


def test_prune_then_finetune_with_the_original_as_teacher_in_a_recipe(tmp_path):
    recipe = pipeline.parse_recipe(_recipe([
        {"stage": "prune", "ratio": 0.5},
        {"stage": "finetune", "epochs": 1, "batch_size": 32, "precision": "fp32", "teacher": "original",
         "kd_temperature": 3, "kd_alpha": 0.7, "teacher_precision": "fp32"},
        {"stage": "distill", "epochs": 1, "batch_size": 32, "precision": "fp32", "hints": {"features.3": "features.3"},
         "teacher_precision": "fp32"},
    ]))
    result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    finetune, distilled = result.log.records[2], result.log.records[3]
    kd = finetune.details["distillation"]
    assert (kd["teacher"], kd["temperature"], kd["alpha"]) == ("original", 3.0, 0.7)
    assert kd["teacher_precision"]["precision"] == "fp32" and kd["adapters"] == []
    assert distilled.details["distillation"]["teacher"] == "original"  # the distill stage's default
    # the pruned student has 8 of the original's 16 channels in features.3: an adapter maps them
    assert distilled.details["distillation"]["adapters"] == ["features_3->features_3"]
    assert result.model.features[3].out_channels == 8


def test_cli_train_with_a_teacher_file(tmp_path):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(models.create("lenet5"), teacher)
    out = tmp_path / "student.pt"
    result = runner.invoke(app, ["train", "lenet5", "--data", "mnist5k", "--out", str(out), "--epochs", "1",
                                 "--teacher", str(teacher), "--kd-temperature", "3", "--kd-alpha", "0.6",
                                 "--hint", "features.3=features.3", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    kd = record["distillation"]
    assert (kd["temperature"], kd["alpha"], kd["hints"]) == (3.0, 0.6, {"features.3": "features.3"})
    assert kd["teacher_precision"]["precision"] in ("fp32", "bf16") and out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--kd-alpha", "1.5"], "--kd-alpha: 1.5 is outside [0, 1]"),
    (["--kd-temperature", "-2"], "--kd-temperature: -2.0 is not a temperature"),
    (["--hint", "features.3"], "--hint 'features.3': give STUDENT_LAYER=TEACHER_LAYER"),
    (["--hint", "features.9=features.3"], "the student has no layer 'features.9'; did you mean"),
    (["--teacher-classes"], "the teacher predicts 5 classes and the student 10"),
    (["--no-teacher"], "no such file"),
])
def test_cli_bad_distillation_input_exits_2_and_writes_nothing(tmp_path, flags, message):
    teacher = tmp_path / "teacher.pt"
    trimkit.save(models.create("lenet5", num_classes=5 if flags == ["--teacher-classes"] else 10), teacher)
    out = tmp_path / "student.pt"
    teacher_flag = str(tmp_path / "missing.pt") if flags == ["--no-teacher"] else str(teacher)
    extra = [] if flags[0] in ("--teacher-classes", "--no-teacher") else flags
    result = runner.invoke(app, ["train", "lenet5", "--data", "mnist5k", "--out", str(out), "--epochs", "1",
                                 "--teacher", teacher_flag, *extra])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.pt"]


# --- the point of it -------------------------------------------------------------------


def test_a_distilled_student_beats_the_same_student_trained_alone():
    """A teacher that learnt from 4,000 images teaches a small student that sees 256 of
    them; trained alone on those 256 at the same budget (epochs, steps, augmentation,
    initial weights), the student does worse, for each of two draws of the 256."""
    full, val_set = data.load("mnist5k", "train"), data.load("mnist5k", "val").subset(500)
    torch.manual_seed(0)
    teacher = models.create("lenet5")
    train.fit(teacher, full, None, epochs=2, batch_size=64, lr=0.05, precision="fp32", progress=False)
    assert train.evaluate(teacher, val_set)["top1"] > 90.0
    for seed in (0, 1):
        few = full.subset(256, seed=1 + seed)
        budget = {"epochs": 15, "batch_size": 32, "lr": 0.05, "precision": "fp32", "progress": False, "seed": seed}
        torch.manual_seed(seed)
        alone = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
        student = copy.deepcopy(alone)
        train.fit(alone, few, None, **budget)
        distill.distill(student, teacher, few, None, temperature=4.0, alpha=0.9, teacher_precision="fp32", **budget)
        alone_top1 = train.evaluate(alone, val_set)["top1"]
        student_top1 = train.evaluate(student, val_set)["top1"]
        assert student_top1 > alone_top1 + 1.0, (seed, alone_top1, student_top1)


# --- a teacher that is wrong cannot collapse the student ------------------------------


class ConstantTeacher(nn.Module):
    """A teacher at chance and sure of it: ``confidence`` more logit for one class on every input."""

    def __init__(self, label: int = 3, classes: int = 10, confidence: float = 20.0) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(classes), requires_grad=False)
        self.logits.data[label] = confidence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1).clone()


def test_the_soft_term_counts_only_where_the_teacher_is_right_and_the_labels_take_the_rest():
    student_logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, 0.1], [0.0, 2.0, 0.0], [0.3, 0.3, 0.9]])
    teacher_logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 2])  # the teacher is right on samples 0 and 3
    hard = torch.nn.functional.cross_entropy(student_logits, labels)
    distiller = distill.Distiller(Tiny(), temperature=2.0, alpha=0.8)
    distiller.hard_loss = lambda inputs, outputs, targets: torch.nn.functional.cross_entropy(outputs, targets)
    distiller.precision = distill.PrecisionChoice("fp32", "asked for")
    distiller._teacher_logits = lambda inputs: teacher_logits
    total = distiller((torch.zeros(4, 1),), student_logits, labels)
    per_sample = [float(soft_target_loss(student_logits[i:i + 1], teacher_logits[i:i + 1], 2.0)) for i in range(4)]
    expected = 0.8 * (per_sample[0] + per_sample[3]) / 4 + (1 - 0.8 * 0.5) * float(hard)
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert distiller.last_terms["teacher_right"] == 0.5
    distiller.only_where_right = False  # every sample: Hinton's formula
    everywhere = distiller((torch.zeros(4, 1),), student_logits, labels)
    assert float(everywhere) == pytest.approx(0.8 * sum(per_sample) / 4 + 0.2 * float(hard), rel=1e-6)


def test_dense_labels_are_resized_to_the_outputs_and_void_counts_as_wrong():
    teacher = torch.zeros(1, 2, 2, 2)
    teacher[0, 1, 0, :] = 1.0  # class 1 on the top row, class 0 below
    labels = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 255, 255], [0, 0, 255, 255]]])
    right = distill.teacher_right(teacher, labels)
    assert right.tolist() == [[[1.0, 0.0], [1.0, 0.0]]]
    assert distill.teacher_right(teacher, {"boxes": labels}) is None


def test_a_confident_teacher_at_chance_leaves_the_student_where_it_gets_alone_with_defaults():
    """Before, alpha 0.9 pulled the student toward the teacher's one class: 10 % top-1."""
    train_set, val_set = data.load("mnist5k", "train"), data.load("mnist5k", "val").subset(300)
    budget = {"epochs": 2, "progress": False, "seed": 0}
    train.seed_everything(0)
    alone = models.create("lenet5")
    student = copy.deepcopy(alone)
    train.fit(alone, train_set, val_set, **budget)
    _, distiller = distill.distill(student, ConstantTeacher(), train_set, val_set, **budget)
    alone_top1, student_top1 = train.evaluate(alone, val_set)["top1"], train.evaluate(student, val_set)["top1"]
    assert alone_top1 > 70.0
    assert student_top1 > alone_top1 - 5.0, (alone_top1, student_top1)
    assert distiller.last_terms["teacher_right"] < 0.4  # the teacher's class, on about a tenth of each batch
