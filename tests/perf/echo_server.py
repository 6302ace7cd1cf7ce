"""A bare grpcio server that echoes the request bytes: the raw baseline of the gRPC benchmarks.
Same thread pool size as the api processes (MOTCUA_GRPC_WORKERS default). Prints its port."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/bench.Echo/Echo"


def main() -> int:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"READY echo {port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
