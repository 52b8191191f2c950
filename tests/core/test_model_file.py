from __future__ import annotations

import pytest
import torch
from torch import nn

import trimkit
from trimkit import models
from trimkit.errors import TrimkitError


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "mobilenetv2", "densenet_small"])
def test_save_load_round_trip_is_bit_exact(tmp_path, name):
    model = models.create(name, num_classes=5)
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.dtype.is_floating_point:
                buffer.uniform_()
    path = trimkit.save(model, tmp_path / "m.pt", metadata={"note": "x"})
    loaded = trimkit.load(path)
    assert _same_state(model, loaded)
    assert models.origin(loaded).kwargs["num_classes"] == 5
    header = trimkit.read_header(path)
    assert header["model"]["name"] == name and header["metadata"] == {"note": "x"}
    x = torch.randn(2, *models.spec(name).input_shape())
    assert torch.equal(model.eval()(x), loaded.eval()(x))


def test_file_loads_with_weights_only(tmp_path):
    path = trimkit.save(models.create("lenet5"), tmp_path / "m.pt")
    content = torch.load(path, weights_only=True)
    assert set(content) == {"trimkit_header", "state_dict"}


def test_models_built_elsewhere_load_into_an_instance(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    path = trimkit.save(model, tmp_path / "m.pt")
    with pytest.raises(TrimkitError, match="pass an instance"):
        trimkit.load(path)
    assert _same_state(model, trimkit.load(path, model=nn.Sequential(nn.Linear(3, 2))))


def test_foreign_checkpoints_with_wrappers_and_prefixes_load(tmp_path):
    source = models.create("lenet5")
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / "foreign.th")
    assert _same_state(source, trimkit.load_weights(models.create("lenet5"), tmp_path / "foreign.th"))
    torch.save(source.state_dict(), tmp_path / "bare.pth")
    assert _same_state(source, trimkit.load_weights(models.create("lenet5"), tmp_path / "bare.pth"))


def test_mismatch_names_keys_and_shapes(tmp_path):
    torch.save(models.create("lenet5", num_classes=3).state_dict(), tmp_path / "c.pt")
    with pytest.raises(TrimkitError, match=r"classifier\.5\.weight: checkpoint \(3, 84\) vs model \(10, 84\)"):
        trimkit.load_weights(models.create("lenet5"), tmp_path / "c.pt")


def test_corrupt_and_pickled_checkpoints_are_refused(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(TrimkitError, match=r"bad\.pt is a text file, not a PyTorch checkpoint"):
        trimkit.load_weights(models.create("lenet5"), tmp_path / "bad.pt")
    path = trimkit.save(models.create("lenet5"), tmp_path / "ok.pt")
    (tmp_path / "torn.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(TrimkitError, match=r"torn\.pt is a ZIP archive .*not a readable PyTorch checkpoint"):
        trimkit.load(tmp_path / "torn.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(TrimkitError, match=r"empty\.pt is an empty file"):
        trimkit.load(tmp_path / "empty.pt")
    (tmp_path / "torn-pickle.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(TrimkitError, match="damaged pickle"):
        trimkit.load(tmp_path / "torn-pickle.pt")
    torch.save(models.create("lenet5"), tmp_path / "pickled.pt")
    with pytest.raises(TrimkitError, match=r"pickled Python object \(trimkit\.models\.lenet\.LeNet5\)"
                                           r".*--trust-checkpoint"):
        trimkit.load_weights(models.create("lenet5"), tmp_path / "pickled.pt")
    assert trimkit.load_weights(models.create("lenet5"), tmp_path / "pickled.pt", trusted=True) is not None


def test_plain_checkpoint_given_to_load_says_how_to_load_it(tmp_path):
    torch.save(models.create("lenet5").state_dict(), tmp_path / "plain.pt")
    with pytest.raises(TrimkitError, match="plain checkpoint"):
        trimkit.load(tmp_path / "plain.pt")


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "m.pt"
    trimkit.save(models.create("lenet5"), target)
    before = target.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        trimkit.save(models.create("lenet5"), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
