"""Training and evaluation of the learned FIQA models (needs the ``train`` extra: torch).

``losses`` (MSECorrLoss, the PLCC term, the fidelity rank loss), ``metrics`` (SRCC,
PLCC after the logistic fit, KRCC, RMSE, challenge score), ``data`` (labelled images
on disk), ``degradations``, ``labels`` and ``degradation_set`` (the training set built
from real faces), ``recipe`` (the recipe files in ``recipes/``) and ``trainer``
(stages with checkpoints, validation and early stopping; whole recipes).
"""
