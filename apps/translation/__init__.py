"""The translation app: a small Transformer encoder–decoder whose FFN activation is a switch.

Commands (see each module's docstring):

- ``accelerate launch -m apps.translation.train --config configs/translation/<x>.yaml [key=value ...]``
- ``python -m apps.translation.translate --run RUN_DIR`` (stdin → stdout)
- ``python -m apps.translation.evaluate --run RUN_DIR [--split test]`` (sacreBLEU → eval.json)

Modules: config (typed settings), data (parallel corpora), tokenizer (joint BPE), batching
(length-bucketed token batches as a pure function of the step), schedule (``get_lr``), model
(ours and the ``torch.nn.Transformer`` reference), decode (greedy and beam search), runtime
(loading a trained run), grammar (the embedded English→German corpus).
"""
