"""`python -m simulators KIND [--port N] [--control-port N] [--seed S] [--speed X] [--host H]`.

Prints one line, `KIND simulator listening on HOST:PORT control HOST:PORT`, once both ports are
open (port 0 picks a free one), then serves until SIGTERM or SIGINT and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from . import SIMULATORS, Running, Simulator

COMMON = ("kind", "host", "port", "control_port", "seed", "speed")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators", description="Serve an instrument simulator."
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, simulator in SIMULATORS.items():
        sub = kinds.add_parser(kind, help=(simulator.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
        sub.add_argument(
            "--port",
            type=int,
            default=simulator.default_port,
            help=f"instrument port; 0 picks a free one ({simulator.default_port})",
        )
        sub.add_argument("--control-port", type=int, default=0, help="fault-injection port (0: a free one)")
        sub.add_argument("--seed", type=int, default=None, help="seed of the noise, for repeatable runs")
        sub.add_argument(
            "--speed", type=float, default=1.0, help="simulated seconds per wall-clock second (1)"
        )
        simulator.add_arguments(sub)
    return parser.parse_args(argv)


async def serve_until_signalled(simulator: Simulator, args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def announce(running: Running) -> None:
        print(
            f"{simulator.kind} simulator listening on {running.host}:{running.port} "
            f"control {running.host}:{running.control_port}",
            flush=True,
        )

    server = asyncio.create_task(simulator.serve(args.host, args.port, args.control_port, ready=announce))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if server.done():
        server.result()  # it failed: raise why
    server.cancel()
    try:
        await server
    except asyncio.CancelledError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    options = {name: value for name, value in vars(args).items() if name not in COMMON}
    simulator = SIMULATORS[args.kind](seed=args.seed, speed=args.speed, **options)
    try:
        asyncio.run(serve_until_signalled(simulator, args))
    except OSError as exc:
        print(f"{args.kind} simulator cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
