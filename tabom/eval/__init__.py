"""Evaluation: accuracy on task families and benchmarks, TDS, the lm-eval model, reports.

- :mod:`tabom.eval.evaluate`: ``evaluate(model, tasks, settings)`` -> ``EvalReport`` (every sample kept)
- :mod:`tabom.eval.sources`: task specs (families, ``gsm8k=path`` benchmarks) -> scorable sources
- :mod:`tabom.eval.presets`: the paper's inference settings (Table 8) as ``--preset`` names
- :mod:`tabom.eval.model_spec`: a base model plus an optional LoRA adapter; ``--compare`` lists
- :mod:`tabom.eval.tds`: Trajectory Discrimination Score (curve, scalar, CSV, PNG)
- :mod:`tabom.eval.lm_eval_model`: the ``tabom`` model of lm-evaluation-harness (registers on import)

Nothing heavy is imported here.
"""
