"""fiqa-stream: the best shot of every face in live cameras and video files."""

__version__ = "0.1.0"
