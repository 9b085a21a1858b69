#!/usr/bin/python3
"""A local RTSP camera for tests and trials: serves an MP4 (H.264) in a loop.

Runs under Debian's system Python with GStreamer's RTSP server
(apt-get install gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad python3-gi), not inside a virtual environment:

    /usr/bin/python3 scripts/rtsp_test_server.py --port 8554 --mount /cam clip.mp4 [--user U --password P]

Prints "ready" once it listens. Several mounts: repeat --mount and the files in order.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="MP4 files with H.264 video, one per mount")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--mount", action="append", help="mount path per file (default /cam, /cam2, ...)")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    mounts = args.mount or [f"/cam{n + 1 if n else ''}" for n in range(len(args.files))]
    if len(mounts) != len(args.files):
        sys.exit("give one --mount per file")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", args.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
    for path, mount in zip(args.files, mounts, strict=True):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( multifilesrc location="{path}" loop=true ! qtdemux ! h264parse ! '
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
        if args.user:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_permission_for_role(args.user, "media.factory.access", True)
            permissions.add_permission_for_role(args.user, "media.factory.construct", True)
            factory.set_permissions(permissions)
        server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on {args.address}:{args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
