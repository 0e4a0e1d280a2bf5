"""moto's S3 server with one request handled at a time.

moto checks `If-None-Match: *` and then writes, in two steps, on a thread per request: two
create-only writes that race can both succeed (seen in CI: two 200s for one claim). Real S3 and
GCS make that check atomic. Serialising the handling restores what the tests rely on: one
winner per create-only write. Connections are still served on threads.

Usage: python moto-server.py HOST PORT
"""

import sys
import threading

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
    return [body]


if __name__ == "__main__":
    run_simple(
        sys.argv[1],
        int(sys.argv[2]),
        serialised,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
