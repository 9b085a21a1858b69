"""The ``fiqa-stream`` command: ``main.py`` parses and dispatches; each family of
commands is one module (``models.py``: dataset, train, eval, export, models; the
archive's index, search and report live in ``fiqa_stream/archive/commands.py``)."""
