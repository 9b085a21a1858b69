"""The child side of the recycled YuNet detector: ``yuface.detect`` in a process of its own.

``yuface`` keeps about 35 kB of native memory on every call and nothing frees it
(../shared/ASSETS.md). Run here, the leak lives in a process that the parent replaces
once it has grown by a set amount (detectors/recycled.py), so the pipeline's memory
stays flat. The child imports only numpy and yuface, so a replacement is ready in a
fraction of a second.

Protocol, over the child's stdin and stdout, each message a 4-byte big-endian length
and a pickle: the child first sends ``("ready", rss)``; then for every request
``(image, confidence)`` it answers ``(confidences, boxes, landmarks, rss)``, where
``rss`` is its resident memory in bytes. End of input (the parent closed the pipe or
died) ends the child.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import IO, Any

LENGTH = struct.Struct(">I")


def write_message(stream: IO[bytes], message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(LENGTH.pack(len(payload)) + payload)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    """The next message, or ``None`` at end of input."""
    header = stream.read(LENGTH.size)
    if len(header) < LENGTH.size:
        return None
    (length,) = LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return pickle.loads(payload)


def resident_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serve() -> None:
    """Answer detection requests until the parent closes the pipe."""
    # The native library may print to stdout; only protocol messages may go there.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")

    import numpy as np
    import yuface

    yuface.detect(np.zeros((64, 64, 3), np.uint8), conf=0.5)
    try:
        write_message(replies, ("ready", resident_bytes()))
        while (request := read_message(requests)) is not None:
            image, confidence = request
            confidences, boxes, landmarks = yuface.detect(image, conf=confidence)
            write_message(replies, (confidences, boxes, landmarks, resident_bytes()))
    except BrokenPipeError:
        pass  # the parent closed the pipe or died: nothing is waiting for an answer


if __name__ == "__main__":
    serve()
