"""The run loop every test server script shares: serve until SIGTERM (how ServerProcess stops it)."""
from __future__ import annotations

import signal


def serve_until_terminated(server, banner: str) -> int:
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(banner, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
