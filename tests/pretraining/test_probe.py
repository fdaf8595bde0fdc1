"""The fill-in probe: fractions per mask rate, deterministic, and it tells a trained model from a random one;
the attention-entropy probe tells diffuse heads from collapsed ones."""

from __future__ import annotations

import math

import torch

from tabom.models import build_tiny
from tabom.pretraining.probe import attention_entropy, fill_accuracy

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=256)


def test_probe_is_deterministic_and_in_range():
    torch.set_num_threads(1)
    model = build_tiny(seed=0, **SMALL).eval()
    first = fill_accuracy(model, rates=(0.1, 1.0), n=3)
    again = fill_accuracy(model, rates=(0.1, 1.0), n=3)
    assert first == again and [r.rate for r in first] == [0.1, 1.0]
    for r in first:
        assert 0.0 <= r.content <= 1.0 and (math.isnan(r.eos) or 0.0 <= r.eos <= 1.0) and r.n_content > 0
    assert first[1].n_content > first[0].n_content  # more masked at t = 1


def test_a_model_that_always_says_eos_gets_every_eos_and_no_content():
    torch.set_num_threads(1)
    model = build_tiny(seed=0, **SMALL).eval()
    vocab = model.backbone.config.vocab_size

    def always_eos(input_ids, attention_mask=None, positions=None):
        logits = torch.zeros(int(positions.sum()), vocab)  # (N, V) packed, as the real forward
        logits[:, model.eos_token_id] = 1.0
        return logits

    model.forward = always_eos
    cells = fill_accuracy(model, rates=(0.5, 1.0), n=2)
    assert all(c.content == 0.0 and c.eos == 1.0 for c in cells)


def test_attention_entropy_is_high_at_init_and_near_zero_when_the_logits_blow_up():
    torch.set_num_threads(1)
    model = build_tiny(seed=0, **SMALL).eval()
    fresh = attention_entropy(model, n=2)
    assert len(fresh) == SMALL["num_hidden_layers"]
    # At init the query/key logits are small: attention is close to uniform over ~100 keys.
    assert all(e > 2.0 for e in fresh), fresh
    assert model.backbone.config._attn_implementation == "sdpa"  # restored after the eager forward
    with torch.no_grad():  # huge query weights: every head puts all its weight on one key
        for layer in model.backbone.model.layers:
            layer.self_attn.q_proj.weight.mul_(1e4)
    collapsed = attention_entropy(model, n=2)
    assert all(e < 0.3 for e in collapsed), collapsed


def test_twin_free_masks_hide_the_result_and_every_later_digit() -> None:
    from tabom.pretraining.probe import twin_free_masks

    assert twin_free_masks("3+4=7\n7*2=14\n#### 14") == [(4, 5, [4, 6, 8, 10, 11, 18, 19]),
                                                         (10, 12, [10, 11, 18, 19])]
    answer = "a=10\n10<4 False\na=10*2=20\n#### 20"
    (s1, e1, m1), (s2, e2, m2) = twin_free_masks(answer)
    assert answer[s1:e1] == "False" and answer[s2:e2] == "20"
    assert "".join(answer[q] for q in m1) == "False10220" + "20"
    assert twin_free_masks("def f(a): return a+1") == []


def test_compute_accuracy_is_a_fraction_per_family_and_one_for_an_oracle(monkeypatch) -> None:
    """A model that returns the unmasked truth computes every result; a random one almost none."""
    from tabom.pretraining import probe

    model = build_tiny(seed=0, **SMALL)
    random_scores = probe.compute_accuracy(model, n=6)
    assert set(random_scores) == {"math_chain", "math_linear", "code_trace"}
    assert all(0.0 <= v < 0.5 for v in random_scores.values()), random_scores

    from tabom.pretraining import pretrain

    truth: dict[str, torch.Tensor] = {}
    real_collate = pretrain.collate

    def recording_collate(m, pairs):
        out = real_collate(m, pairs)
        truth["ids"] = out[0]
        return out

    monkeypatch.setattr("tabom.pretraining.pretrain.collate", recording_collate)
    vocab = model.vocab_size

    class Oracle:
        def __getattr__(self, name):
            return getattr(model, name)

        def __call__(self, input_ids, attention_mask=None, positions=None):
            return torch.nn.functional.one_hot(truth["ids"][positions], vocab).float()  # (N, V)

    assert probe.compute_accuracy(Oracle(), n=6) == {"math_chain": 1.0, "math_linear": 1.0, "code_trace": 1.0}


def test_drill_facts_are_distinct_true_training_facts_and_an_oracle_scores_one(monkeypatch) -> None:
    from tabom.tasks.drill import answer_facts
    from tabom.pretraining import probe

    facts = probe.drill_facts(n=20, n_per_family=200)
    assert set(facts) == {"math_chain", "math_linear", "code_trace"}
    assert probe.drill_facts(n=20, n_per_family=200) == facts  # seeded
    for family, rows in facts.items():
        assert len(rows) == 20 and len({q for q, _ in rows}) == 20, family
        for q, a in rows:  # each is a checked fact: answer_facts keeps only true ones
            assert answer_facts([q + a if q.endswith("=") else f"{q} {a}"]) == [(q, a)], (q, a)
    table = {q: a for rows in facts.values() for q, a in rows}
    monkeypatch.setattr(probe, "drill_facts", lambda n, seed: facts)
    monkeypatch.setattr("tabom.decoding.text.generate_text",
                        lambda model, texts, **kw: [table[t] for t in texts])
    assert probe.drill_accuracy(build_tiny(seed=0, **SMALL)) == {k: 1.0 for k in facts}
    monkeypatch.setattr("tabom.decoding.text.generate_text", lambda model, texts, **kw: ["0"] * len(texts))
    wrong = probe.drill_accuracy(build_tiny(seed=0, **SMALL))
    assert all(v < 0.5 for v in wrong.values()), wrong
