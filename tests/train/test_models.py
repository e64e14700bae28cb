import pytest
import torch
import torch.nn.functional as F

from lvmdiag.train.models import build_model, count_parameters, model_config

from .conftest import tiny_config


@pytest.mark.parametrize("model_type", ["transformer", "lstm"])
def test_outputs_are_unit_vectors_of_the_input_dimension(model_type):
    torch.manual_seed(0)
    model = build_model(tiny_config(model_type=model_type), d_in=24).eval()
    q, q_raw = model(F.normalize(torch.randn(7, 5, 24), dim=-1))
    assert q.shape == q_raw.shape == (7, 24)
    assert torch.allclose(q.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert torch.allclose(q_raw.norm(dim=-1), torch.ones(7), atol=1e-5)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_transformer_sees_the_order_of_the_context(pos_encoding):
    # Without position information self-attention read out at the last token is invariant to
    # permuting the earlier tokens; with it, the output must change.
    torch.manual_seed(0)
    model = build_model(tiny_config(pos_encoding=pos_encoding), d_in=16).eval()
    x = F.normalize(torch.randn(4, 5, 16), dim=-1)
    swapped = x[:, [1, 0, 2, 3, 4]]
    with torch.no_grad():
        a, b = model(x)[1], model(swapped)[1]
    assert (a - b).abs().max() > 1e-3


def test_transformer_without_positions_would_be_blind_to_order():
    # The control for the test above: zero the position table and the same swap changes nothing.
    torch.manual_seed(0)
    model = build_model(tiny_config(), d_in=16).eval()
    with torch.no_grad():
        model.backbone.pos.zero_()
        x = F.normalize(torch.randn(4, 5, 16), dim=-1)
        a, b = model(x)[1], model(x[:, [1, 0, 2, 3, 4]])[1]
    assert torch.allclose(a, b, atol=1e-5)


def test_upstream_default_size_matches_the_reported_parameter_count():
    # ANCHOR_BENCHMARKS.md: the upstream default (d_model 512, 4 layers, 768-d) has 13.7M parameters.
    model = build_model(tiny_config(d_model=512, nhead=8, num_layers=4), d_in=768)
    assert 13.0e6 < count_parameters(model) < 14.5e6


def test_model_config_block_has_upstream_keys():
    block = model_config(tiny_config(), 16)
    assert {"model_type", "d_model", "nhead", "num_layers", "dropout", "anchor_lambda_init",
            "anchor_lambda_learnable", "input_dim"} <= set(block)


@pytest.mark.parametrize("d_in", [32, 384, 768])
def test_position_and_content_start_at_the_same_scale(d_in):
    # An unscaled sinusoidal table (rms 0.71) would be ~18x the projected content (rms ~0.04 at d_in 384)
    # and, after the pre-norm LayerNorm, leave the content a few percent of every token.
    torch.manual_seed(0)
    backbone = build_model(tiny_config(d_model=64, nhead=4), d_in=d_in).backbone
    x = F.normalize(torch.randn(512, 5, d_in), dim=-1)
    with torch.no_grad():
        content = backbone.proj(x).pow(2).mean().sqrt()
    pos = backbone.pos.detach().pow(2).mean().sqrt()
    # the rms of 64 x 2560 projected features varies by a few percent between inits; 0.7-1.4 is loose
    assert 0.7 < float(pos / content) < 1.4
