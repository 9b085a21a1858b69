"""Sources, decoding, tracking, best-shot selection and the pipeline runner."""
