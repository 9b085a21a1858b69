"""Archive indexing: every face of a folder of recorded video, once, searchable.

``indexer.py`` finds the videos and drives a runner (``local.py``: worker processes on
this machine; ``ray_cluster.py``: one Ray task per video); each video runs through the
ordinary pipeline in ``analysis.py``; ``database.py`` keeps the results in SQLite,
``report.py`` renders them as one HTML page, and ``commands.py`` (with ``display.py``)
is the ``index``, ``search`` and ``report`` commands.
"""
