from __future__ import annotations

import pytest
import torch

from quant_models import ScaledInputNet, SharedLayerNet, SiameseNet, TinyNet, TwoBranchNet
from trimkit import TrimkitError, models, quant
from trimkit.quant import Policy


def test_roles_and_activation_from_a_string():
    policy = Policy.parse("first=int16,hidden=int4,last=int8,act=int8")
    assert (policy.first.format.bits, policy.hidden.format.bits, policy.last.format.bits) == (16, 4, 8)
    assert policy.hidden.granularity == "channel" and policy.hidden.scaling == "stats"
    assert policy.act.name == "int8" and policy.input_format.name == "int8"
    assert str(policy) == "first=int16,hidden=int4,last=int8,act=int8"


def test_a_bare_format_applies_to_every_layer_and_to_activations():
    policy = Policy.parse("int8")
    assert {policy.first.format.name, policy.hidden.format.name, policy.last.format.name, policy.act.name} == {"int8"}
    assert str(policy) == "int8"
    overridden = Policy.parse("int4,last=int8,act=int32")
    assert overridden.first.format.name == "int4" and overridden.last.format.name == "int8"
    assert overridden.act.name == "int32"


def test_modifiers_granularity_key_and_patterns():
    policy = Policy.parse("granularity=tensor,hidden=binary:learned,first=ternary:channel,"
                          "layer3.*=int8,last=binary:const")
    assert (policy.hidden.format.kind, policy.hidden.scaling,
            policy.hidden.granularity) == ("binary", "learned", "tensor")
    assert policy.first.granularity == "channel"
    assert policy.last.scaling == "const" and policy.last.granularity == "tensor"
    assert policy.weight_spec("layer3.0.conv1", "hidden").format.name == "int8"
    assert policy.weight_spec("layer2.0.conv1", "hidden").format.name == "binary"
    assert policy.act.name == "float32" and policy.input_format.name == "float32"


@pytest.mark.parametrize("text", [
    "int8", "first=int16,hidden=binary:learned:tensor,last=int8,act=int32",
    "hidden=ternary:const,act=int4,input=int16,layer1.*=int2:tensor",
])
def test_the_canonical_string_parses_back_to_the_same_policy(text):
    policy = Policy.parse(text)
    assert Policy.parse(str(policy)) == policy


def test_a_dict_reads_like_the_string():
    from_dict = Policy.parse({"first": "int16", "hidden": "int4", "last": "int8", "act": "int8",
                              "layers": {"layer3.*": "int8"}})
    assert from_dict == Policy.parse("first=int16,hidden=int4,last=int8,act=int8,layer3.*=int8")


@pytest.mark.parametrize("act, expected_input", [("int4", "int8"), ("binary", "int8"), ("int16", "int16"),
                                                 ("int8", "int8"), ("float32", "float32")])
def test_the_model_input_format_follows_act_with_at_least_8_bits(act, expected_input):
    assert Policy.parse(f"hidden=int4,act={act}").input_format.name == expected_input


@pytest.mark.parametrize("text, message", [
    ("", "empty policy"),
    ("frist=int8", "bad policy key 'frist'; keys: first, hidden, last, act, input, granularity"),
    ("hidden=int1", "unknown format 'int1' in 'hidden=int1'; formats: float32, int2 ... int32"),
    ("hidden=int64", "unknown format 'int64'"),
    ("hidden=float16", "unknown format 'float16'"),
    ("first=int8:foo", "unknown modifier 'foo'"),
    ("act=int8:tensor", "activation formats take no modifiers"),
    ("int8,int4", "2 bare formats"),
    ("hidden=int4:const", "a constant scale is for binary and ternary only"),
    ("hidden=binary:const:channel", "a constant scale is one per tensor"),
    ("input=binary", "the model input must be float32 or an integer format"),
    ("granularity=row", "unknown granularity 'row'"),
    ("hidden=", "has no format"),
    ("first=int8,,act=int8", "empty entry"),
    ("first=int8,bad key=int4", "bad policy key 'bad key'"),
])
def test_bad_policies_are_one_clear_error(text, message):
    with pytest.raises(TrimkitError) as caught:
        Policy.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_first_and_last_layers_in_execution_order_with_input_signs():
    model = TinyNet()
    plan = quant.plan(model, "first=int16,hidden=binary,last=int8,act=int4", torch.randn(4, 1, 28, 28))
    assert [(layer.name, layer.role) for layer in plan.layers] == [("conv1", "first"), ("conv2", "hidden"),
                                                                   ("head", "last")]
    by_name = {layer.name: layer for layer in plan.layers}
    assert by_name["conv1"].act.name == "int8" and by_name["conv1"].act_signed  # the normalised input
    assert by_name["conv2"].act.name == "int4" and not by_name["conv2"].act_signed  # after a module ReLU
    assert not by_name["head"].act_signed  # after F.relu and a mean
    assert str(by_name["conv2"].weight) == "binary"


def test_zoo_lenet_roles():
    model = models.create("lenet5")
    plan = quant.plan(model, "int8", torch.randn(2, 1, 28, 28))
    roles = {layer.name: layer.role for layer in plan.layers}
    assert roles == {"features.0": "first", "features.3": "hidden", "classifier.1": "hidden",
                     "classifier.3": "hidden", "classifier.5": "last"}


def test_each_input_branch_has_a_first_layer():
    plan = quant.plan(TwoBranchNet(), "int8", (torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)))
    assert {layer.name: layer.role for layer in plan.layers} == {"branch_a": "first", "branch_b": "first",
                                                                "head": "last"}


def test_a_shared_backbone_is_first_once_and_the_last_layer_to_run_is_last():
    plan = quant.plan(SiameseNet(), "int8", (torch.randn(1, 1, 7, 7), torch.randn(1, 1, 15, 15)))
    assert {layer.name: layer.role for layer in plan.layers} == {"backbone.0": "first", "backbone.2": "last"}


def test_without_an_unchanged_input_or_output_the_first_and_last_to_run_count():
    plan = quant.plan(ScaledInputNet(), "first=int8,last=int4", torch.randn(2, 1, 8, 8))
    assert [(layer.name, layer.role, layer.weight.format.name) for layer in plan.layers] == [
        ("conv", "first", "int8"), ("fc", "last", "int4")]


def test_patterns_override_roles_and_must_match_a_layer():
    plan = quant.plan(TinyNet(), "hidden=binary,head=int2,conv*=int4", torch.randn(2, 1, 28, 28))
    assert [layer.weight.format.name for layer in plan.layers] == ["int4", "int4", "int2"]
    with pytest.raises(TrimkitError, match=r"'layer9\.\*' is neither a known key nor a pattern"
                                           r".*layers: conv1, conv2, head"):
        quant.plan(TinyNet(), "layer9.*=int8", torch.randn(2, 1, 28, 28))


def test_a_shared_module_is_replaced_everywhere_by_one_quantised_module():
    model = SharedLayerNet()
    quantized = quant.quantize(model, "int8", example_inputs=torch.randn(2, 1, 8, 8))
    assert quantized.conv is quantized.again
    assert type(quantized.conv).__name__ == "QuantConv2d"
    assert type(model.conv).__name__ == "Conv2d"  # the original is untouched
