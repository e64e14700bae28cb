"""Readers for the logs other training tools write, each mapped to a per-epoch :class:`RunHistory`.

- :mod:`.lightning_csv`: PyTorch Lightning ``CSVLogger`` (``metrics.csv`` + ``hparams.yaml``);
- :mod:`.hf_state`: Hugging Face ``trainer_state.json`` (``log_history``; + ``training_args.json`` /
  ``config.json`` where present);
- :mod:`.tensorboard`: TensorBoard event directories (tensorboard's own ``EventAccumulator``);
- :mod:`.names`: the one name-mapping table they share (also used by ``lvmdiag.monitor``);
- :mod:`.epochs`: step-level rows -> one row per finished epoch, with the step axis kept.

:func:`lvmdiag.report.history.detect_format` finds these formats; the readers are imported only
when one is read.
"""
