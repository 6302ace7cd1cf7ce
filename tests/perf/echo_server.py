"""A bare grpcio server that echoes the request bytes: the raw baseline of the gRPC benchmarks.
Same thread pool size as the api processes (MOTCUA_GRPC_WORKERS default). Prints its port."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/bench.Echo/Echo"


def serve(handler: grpc.GenericRpcHandler, workers: int, port: int = 0, reuse_port: bool = False,
          label: str = "echo") -> int:
    """Serve ``handler`` on 127.0.0.1:``port`` (0: a free one) until SIGTERM; prints ``READY <label> <port>``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                  ("grpc.so_reuseport", int(reuse_port))])
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"READY {label} {bound}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(1)
    return 0


def main() -> int:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    return serve(handler, workers)


if __name__ == "__main__":
    sys.exit(main())
