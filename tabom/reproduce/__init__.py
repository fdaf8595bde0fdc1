"""`tabom reproduce`: the paper's experiments end to end on the built-in tiny model, with a report.

- :mod:`tabom.reproduce.plan`: the experiment grid as data (methods, ablation, grid, sweep, sizes)
- :mod:`tabom.reproduce.store`: artifact paths and completion markers (what makes a rerun resume)
- :mod:`tabom.reproduce.pipeline`: the cached steps (trajectories, training, evaluation, TDS)
- :mod:`tabom.reproduce.results`: every number gathered from the artifacts (results.json)
- :mod:`tabom.reproduce.reading`: plain-language sentences generated from the numbers
- :mod:`tabom.reproduce.report`, :mod:`tabom.reproduce.plots`: report.md and its figures
- :mod:`tabom.reproduce.paper`: the paper's own numbers, for orientation

Nothing heavy is imported here.
"""
