"""Post-training: `tabom train` (LoRA/full, DDP or FSDP, resume); pre-training the tiny model is
`tabom.pretraining`.

Read `step.py` first (the train step), then `trainer.py` (the loop), `data.py` (rows and
collation), `checkpoint.py` (atomic checkpoints), `build.py` (model, optimizer, schedule) and
`logger.py`. Nothing is imported here, so `import tabom.training.data` stays cheap.
"""
