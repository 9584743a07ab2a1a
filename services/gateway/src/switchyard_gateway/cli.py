"""``switchyard`` command line.

switchyard up    --config FILE [--port 4000] [--topology split|single]
    Start the whole gateway: one process per service (split, the default) or all in one (single).
switchyard serve SERVICE... | all  --config FILE [--grpc-port N] [--port N] [--target NAME=HOST:PORT ...]
    Host the named services in this process (how Kubernetes runs them: one service each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from switchyard_core.config import ConfigError, load_config
from switchyard_core.logs import configure_logging
from switchyard_core.runtime import SERVICES, ServiceSettings
from switchyard_core.server import run, stop_event_on_signals


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description="Switchyard LLM gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", default="config.yaml", help="LiteLLM-format config file (default: config.yaml)")
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
        sub.add_argument("--data-dir", default=".switchyard", help="embedded state, e.g. the SQLite database")
        sub.add_argument("--log-level", default="INFO")

    up = commands.add_parser("up", help="start every service and supervise them")
    common(up)
    up.add_argument("--port", type=int, default=4000, help="the edge's HTTP port (default: 4000)")
    up.add_argument("--topology", choices=("split", "single"), default="split")

    serve = commands.add_parser("serve", help="host one or several services in this process")
    common(serve)
    serve.add_argument("services", nargs="+", metavar="SERVICE", help=f"{', '.join(SERVICES)} or all")
    serve.add_argument("--port", type=int, default=4000, help="the edge's HTTP port, when hosting the edge")
    serve.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: any free port)")
    serve.add_argument(
        "--target", action="append", default=[], metavar="NAME=HOST:PORT", help="where another service listens"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"switchyard: invalid config: {exc}\n")
        raise SystemExit(2) from None
    configure_logging(args.log_level, config.secrets())
    if config.unknown_keys:
        import logging

        logging.getLogger("switchyard").warning(
            "config keys not used by Switchyard yet: %s", ", ".join(config.unknown_keys)
        )
    targets = {}
    for entry in getattr(args, "target", []):
        name, sep, address = entry.partition("=")
        if not sep or name not in SERVICES:
            sys.stderr.write(f"switchyard: --target must be NAME=HOST:PORT with NAME one of {', '.join(SERVICES)}\n")
            raise SystemExit(2)
        targets[name] = address
    settings = ServiceSettings(
        config=config,
        host=args.host,
        grpc_port=getattr(args, "grpc_port", 0),
        http_port=args.port,
        targets=targets,
        data_dir=Path(args.data_dir),
        log_level=args.log_level,
    )
    if args.command == "up" and args.topology == "split":
        from switchyard_gateway.supervisor import supervise

        raise SystemExit(run(lambda: supervise(args.config, settings)))
    services = list(SERVICES) if args.command == "up" else args.services
    try:
        from switchyard_gateway.host import normalize

        normalize(services)
    except ValueError as exc:
        sys.stderr.write(f"switchyard: {exc}\n")
        raise SystemExit(2) from None
    run(lambda: _serve(services, settings, announce=args.command == "up"))


async def _serve(services: list[str], settings: ServiceSettings, *, announce: bool) -> None:
    from switchyard_gateway.host import host

    stop = stop_event_on_signals()

    def ready(ports: dict[str, int]) -> None:
        # One machine-readable line per process: the supervisor and tests wait for it.
        print(f"switchyard ready {' '.join(f'{k}={v}' for k, v in ports.items())}", flush=True)
        if announce:
            print(f"Switchyard edge listening on http://{settings.host}:{settings.http_port}", flush=True)

    await host(services, settings, stop, ready)


if __name__ == "__main__":
    main()
