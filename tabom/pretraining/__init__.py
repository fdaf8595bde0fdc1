"""Pre-training the built-in tiny model (`tabom pretrain`) and checking its progress (`probe.py`).

This is how the test model in `tabom/assets/tiny/` is made, not post-training: `tabom train`
(`tabom.training`) post-trains any model with the paper's objectives. Read `pretrain.py` (the
mixture of task families, NELBO with number grouping, its own resume state), then `probe.py`.
Nothing is imported here, so `import tabom.pretraining.probe` stays cheap.
"""
