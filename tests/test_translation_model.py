"""Translation model, decoding, tokenizer, batching and schedule (tiny models, CPU, seconds)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from apps.translation.batching import TokenBatcher, shard
from apps.translation.config import DecodeConfig, ModelConfig, OptimConfig
from apps.translation.decode import beam_search, greedy_search, pad_batch, translate_ids
from apps.translation.model import FeedForward, Seq2SeqTransformer, build_model, count_parameters, init_model
from apps.translation.schedule import get_lr
from apps.translation.tokenizer import BPETokenizer, train_bpe
from common.activations import FusedLeakyReLU
from common.config import ConfigError

PAD, BOS, EOS = 0, 2, 3
V = 40


def tiny(impl="leakylab", **kw) -> torch.nn.Module:
    cfg = ModelConfig(impl=impl, d_model=32, heads=4, enc_layers=2, dec_layers=2, d_ff=64, dropout=0.0, max_len=64,
                      **kw)
    torch.manual_seed(0)
    return init_model(build_model(cfg, V, PAD), cfg).eval()


def random_src(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for i in range(n):
        length = int(torch.randint(2, 9, (1,), generator=g))
        seqs.append(torch.randint(4, V, (length,), generator=g).tolist() + [EOS])
    return pad_batch(seqs, PAD)


@pytest.mark.parametrize("norm_first", [False, True])
def test_incremental_step_matches_full_forward(norm_first):
    """The KV-cached decoder step gives the same log-probabilities as the teacher-forced pass."""
    model = tiny(norm_first=norm_first)
    src = random_src()
    tgt_in = torch.cat([torch.full((src.shape[0], 1), BOS), torch.randint(4, V, (src.shape[0], 5))], 1)
    with torch.no_grad():
        full = F.log_softmax(model(src, tgt_in), -1)
        memory, mask = model.encode(src)
        state = model.start_state(memory, mask)
        steps = [model.step(tgt_in[:, t], state) for t in range(tgt_in.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["leakylab", "torch"])
def test_beam_width_one_equals_greedy(impl):
    model = tiny(impl)
    src = random_src(8, seed=3)
    kw = dict(bos=BOS, eos=EOS, pad=PAD, max_len_a=1.5, max_len_b=4)
    greedy = greedy_search(model, src, **kw)
    for lp in (0.0, 1.0):
        assert beam_search(model, src, beam=1, length_penalty=lp, **kw) == greedy
    assert any(len(h) > 0 for h in greedy)


def _sequence_logprob(model, src_row, hyp):
    tgt_in = torch.tensor([[BOS] + hyp])
    tgt_out = torch.tensor([hyp + [EOS]])
    with torch.no_grad():
        logp = F.log_softmax(model(src_row[None], tgt_in), -1)
    return logp.gather(-1, tgt_out[..., None]).sum().item()


def test_beam_search_finds_better_or_equal_sequences_than_greedy():
    """With no length penalty, beam search maximises log-probability: never worse than greedy,
    and its reported hypothesis is scored consistently with the full model."""
    model = tiny()
    src = random_src(8, seed=5)
    kw = dict(bos=BOS, eos=EOS, pad=PAD, max_len_a=2.0, max_len_b=6)
    greedy = greedy_search(model, src, **kw)
    beam = beam_search(model, src, beam=4, length_penalty=0.0, **kw)
    for i in range(src.shape[0]):
        row = src[i][src[i] != PAD]
        # only compare hypotheses that ended with EOS (a length-capped one is scored without it)
        if len(greedy[i]) < 2 * len(row) + 5 and len(beam[i]) < 2 * len(row) + 5:
            assert _sequence_logprob(model, row, beam[i]) >= _sequence_logprob(model, row, greedy[i]) - 1e-4


def test_batched_decoding_equals_one_by_one():
    model = tiny()
    src = random_src(6, seed=7)
    ids = [row[row != PAD][:-1].tolist() for row in src]  # translate_ids appends EOS itself
    tok = {"pad": PAD, "bos": BOS, "eos": EOS}
    cfg = DecodeConfig(beam=3, batch_size=4, max_len_b=5)
    batched = translate_ids(model, ids, tok, cfg)
    single = [translate_ids(model, [s], tok, DecodeConfig(beam=3, batch_size=1, max_len_b=5))[0] for s in ids]
    assert batched == single


def test_ffn_activation_is_the_configured_module_and_fused_drops_fc1_bias():
    leaky = tiny(activation="leaky_relu", act_params={"alpha": 0.2})
    ffns = [m for m in leaky.modules() if isinstance(m, FeedForward)]
    assert len(ffns) == 4 and all(isinstance(f.act, torch.nn.LeakyReLU) and f.act.negative_slope == 0.2 for f in ffns)
    fused = tiny(activation="fused_leaky_relu", act_params={"alpha": 0.2})
    f = next(m for m in fused.modules() if isinstance(m, FeedForward))
    assert isinstance(f.act, FusedLeakyReLU) and f.fc1.bias is None
    assert count_parameters(fused) == count_parameters(leaky)  # the bias moved, the size did not
    x = torch.randn(2, 5, 32)
    assert f(x).shape == x.shape


def test_leaky_init_uses_the_activation_gain():
    """fc1 before a LeakyReLU(α) gets std sqrt(2/(1+α²)/fan_in) (common.init), fc2 gain 1."""
    model = Seq2SeqTransformer(ModelConfig(d_model=256, d_ff=1024, heads=4, activation="leaky_relu",
                                           act_params={"alpha": 0.5}), V, PAD)
    init_model(model, model.cfg)
    ffn = model.encoder[0].ffn
    assert ffn.fc1.weight.std().item() == pytest.approx(math.sqrt(2 / 1.25 / 256), rel=0.03)
    assert ffn.fc2.weight.std().item() == pytest.approx(math.sqrt(1 / 1024), rel=0.03)
    assert model.generator.weight is model.embed.tok.weight  # tied


def test_same_size_as_torch_reference():
    ours, ref = tiny("leakylab"), tiny("torch")
    # nn.Transformer always adds a final LayerNorm to each stack (2 × 2·d parameters).
    assert count_parameters(ref) - count_parameters(ours) == 4 * 32


def test_bad_model_config_names_the_key():
    with pytest.raises(ConfigError, match="heads"):
        ModelConfig(d_model=30, heads=4)
    with pytest.raises(ConfigError, match="act_params"):
        ModelConfig(activation="leaky_relu", act_params={"beta": 1.0})


def test_tokenizer_round_trips_and_reloads(tmp_path):
    texts = ["Zwei junge Männer spielen Fußball.", "A dog's ball, (red) & blue: 3.5 kg!", "Ein Café in Köln — „schön“."]
    tok = train_bpe(texts * 20, vocab_size=200, min_frequency=1)
    ids = tok.encode(texts)
    assert tok.decode(ids) == texts
    assert all(tok.unk_id not in x for x in ids)
    tok.save(tmp_path)
    again = BPETokenizer.load(tmp_path)
    assert again.encode(texts) == ids and (again.pad_id, again.bos_id, again.eos_id) == (0, 2, 3)


def test_batches_are_a_pure_function_of_seed_and_step():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(1, 30, (500,)).tolist()
    tgt = torch.randint(1, 30, (500,), generator=g).tolist()
    a, b = TokenBatcher(src, tgt, 400, seed=3), TokenBatcher(src, tgt, 400, seed=3)
    per_epoch = len(a.epoch_batches(0))
    steps = [0, 5, per_epoch - 1, per_epoch, 3 * per_epoch + 2]
    for s in reversed(steps):  # b is queried out of order: no hidden iterator state
        assert (a.batch(s)[1] == b.batch(s)[1]).all()
    epoch0 = a.epoch_batches(0)
    assert sorted(i for bt in epoch0 for i in bt.tolist()) == list(range(500))  # each pair once per epoch
    for bt in epoch0:
        width = max(src[i] for i in bt) + max(tgt[i] for i in bt)
        assert len(bt) * width <= 400 or len(bt) <= 8
    assert not all((x == y).all() for x, y in zip(a.epoch_batches(1), epoch0) if len(x) == len(y))
    assert TokenBatcher(src, tgt, 400, seed=4).batch(0)[1].tolist() != a.batch(0)[1].tolist()
    parts = [shard(epoch0[0], r, 2) for r in range(2)]
    assert sorted(parts[0].tolist() + parts[1].tolist()) == sorted(epoch0[0].tolist())


def test_lr_schedule_warms_up_and_decays():
    cos = OptimConfig(lr=1e-3, warmup=10, schedule="cosine", min_lr_ratio=0.1)
    lrs = [get_lr(s, cos, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(x >= y for x, y in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(1e-4, rel=0.05)
    inv = OptimConfig(lr=1e-3, warmup=100, schedule="inverse_sqrt")
    assert get_lr(399, inv, 1000) == pytest.approx(1e-3 * math.sqrt(100 / 400))
