"""Programs that read what the sinks wrote: the reference Redis consumer (``fiqa-stream consume``)."""
