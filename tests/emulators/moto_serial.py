"""moto's server mode with one request at a time.

moto's own `moto_server` handles requests on many threads, and its DynamoDB backend
evaluates a condition expression and applies the update without a lock: two concurrent
conditional `UpdateItem`s on one item can both pass their condition. Real DynamoDB
applies a conditional write atomically per item, and Tollgate's strict limits depend on
that. Serving one request at a time restores the real semantics for every service.

Usage: python moto_serial.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    application = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # Consume the whole response inside the lock: the backend's work may be lazy.
            return list(application(environ, start_response))

    run_simple(
        host,
        port,
        serialized,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
