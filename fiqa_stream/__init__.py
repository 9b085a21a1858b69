"""fiqa-stream: the best shot of every face in live cameras and video files."""

import os

__version__ = "0.1.0"

# YuNet runs on OpenMP, whose idle threads spin by default. The pipeline's decode, sink
# and onnxruntime threads then fight them for the cores: on a busy 2-core machine the
# whole pipeline ran 12x slower (bench/pipeline.py, 2.1 vs 24.7 frames/s). OpenMP reads
# this once, when it loads, so it is set before any detector is imported; an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
