"""Command line: flags, logging, `--config.check`, `--demo`; exit 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from exporter import __version__
from exporter.auth import describe_credentials
from exporter.config import Config, ConfigError, load_config, parse_duration
from exporter.config.problems import WebConfigError
from exporter.config.web import WebSettings, load_web_settings
from exporter.configview import describe_sources
from exporter.demo import SCENARIOS, demo_config
from exporter.joblinks import parse_grafana_url
from exporter.listener import (
    DEFAULT_MAX_CONNECTIONS,
    KEEPALIVE_TIMEOUT,
    ConnectionLimits,
    GuardedSite,
    connection_cap,
)
from exporter.liveweb import LiveWebConfig
from exporter.logs import FORMATS, LEVELS, configure_logging
from exporter.runtime import ConfigLoader, ExporterHooks, ProcessTuning
from exporter.shard import parse_shard
from exporter.signals import EarlySignals
from exporter.values import parse_natural
from exporter.web import EXPORTER, create_app

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
DEFAULT_LISTEN_ADDRESS = ":9469"
#: In-flight scrapes get this long to finish on shutdown; the whole stop stays under 5 s.
SHUTDOWN_GRACE_SECONDS = 2.0


def build_parser() -> argparse.ArgumentParser:
    """The exporter's flags, named as Prometheus exporters name them."""
    parser = argparse.ArgumentParser(
        prog="dli-exporter",
        description="Prometheus exporter for Huawei Cloud DLI Flink streaming jobs.",
    )
    parser.add_argument(
        "--config.file", dest="config_file", default="config.yaml", help="YAML config file"
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, print any problems and exit (0 valid, 2 invalid)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=DEFAULT_LISTEN_ADDRESS,
        help="address to serve /metrics on, HOST:PORT (default %(default)s: all interfaces)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="exporter-toolkit style web config: TLS (tls_server_config, client certificates) "
        "and basic auth (basic_auth_users with bcrypt hashes); re-read on every reload",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="enable POST/PUT /-/reload (off by default, as in Prometheus; SIGHUP always works)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        default=str(DEFAULT_MAX_CONNECTIONS),
        help="most HTTP connections served at once, at most a quarter of the open-files limit "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--web.header-timeout",
        dest="header_timeout",
        default="10s",
        help="a request's headers (and a TLS handshake) must arrive within this duration "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--web.grafana-url",
        dest="grafana_url",
        help="Grafana's base URL: the status page links each job to its job-detail dashboard",
    )
    parser.add_argument(
        "--shard",
        default="0/1",
        help="INDEX/COUNT: poll only the targets whose name hashes to this replica "
        "(0-based; e.g. a StatefulSet ordinal and its replica count); auto/COUNT takes INDEX "
        "from the host name's trailing -N (a StatefulSet pod), and auto alone COUNT from "
        "DLI_EXPORTER_SHARD_COUNT. Default %(default)s",
    )
    parser.add_argument("--log.level", dest="log_level", choices=LEVELS, default="info")
    parser.add_argument("--log.format", dest="log_format", choices=FORMATS, default="logfmt")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="poll a built-in DLI simulator on loopback; no config or credentials needed",
    )
    parser.add_argument(
        "--demo.scenario",
        dest="demo_scenario",
        choices=SCENARIOS,
        default="lifecycle",
        help="with --demo: 'lifecycle' (jobs with realistic lifecycles) or 'incident' (one "
        "healthy job, one that fails, one in a restart loop; polled every second)",
    )
    parser.add_argument("--version", action="version", version=f"dli-exporter {__version__}")
    return parser


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """Split ``HOST:PORT`` (``:PORT`` = all interfaces, ``[::1]:PORT`` for IPv6)."""
    host, sep, port_text = address.rpartition(":")
    port = parse_natural(port_text, max_digits=5)
    if not sep or port is None or port > 65535:
        raise ValueError(f"invalid listen address {address!r}: expected HOST:PORT")
    host = host.strip("[]")
    return (host or None), port


def parse_max_connections(text: str) -> int:
    """``--web.max-connections``: a whole number of at least 1."""
    count = parse_natural(text)
    if count is None or count < 1:
        raise ValueError(f"--web.max-connections: {text!r} is not a whole number of at least 1")
    return count


def parse_header_timeout(text: str) -> float:
    """``--web.header-timeout``: a positive duration such as ``10s`` or ``500ms``."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ValueError(f"--web.header-timeout: {text!r} is not a positive duration like 10s")
    return seconds


@dataclass(frozen=True, slots=True)
class Listener:
    """Where and how `/metrics` is served; ``web_config_file`` is re-read on reload."""

    host: str | None
    port: int
    web: WebSettings = field(default_factory=WebSettings)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    web_config_file: str | None = None
    #: ``--web.grafana-url``: the status page's dashboard links (none without it).
    grafana_url: str | None = None


def main(
    argv: Sequence[str] | None = None,
    *,
    early: EarlySignals | None = None,
    hooks: ExporterHooks | None = None,
    tuning: ProcessTuning | None = None,
) -> int:
    """Run the exporter; returns the process exit code.

    ``early`` holds SIGHUPs caught before the event loop runs (see `exporter.entry`); without
    it one is installed now. ``hooks`` instrument the exporter (benchmarks). The process-wide
    settings of `exporter.runtime.tune_process` are always applied, with ``tuning``'s
    arguments when given (default: the exporter's switch interval unless already changed).
    """
    if early is None:
        early = EarlySignals()
        early.install()
    tuning = tuning or ProcessTuning()
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        listener = _listener(args)
        shard = parse_shard(args.shard, hostname=_hostname(), environ=os.environ)
    except (ValueError, WebConfigError) as exc:
        print(f"dli-exporter: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    lifecycle = args.enable_lifecycle
    if args.demo:
        demo = _run_demo(
            listener,
            args.demo_scenario,
            enable_lifecycle=lifecycle,
            early=early,
            hooks=hooks,
            tuning=tuning,
        )
        return asyncio.run(demo)
    try:
        full = load_config(args.config_file)
    except ConfigError as exc:
        print(f"dli-exporter: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = shard.select(full)
    if args.config_check:
        mine = (
            f", {len(config.targets)} on shard {shard.index}/{shard.count}"
            if shard.count > 1
            else ""
        )
        print(f"{args.config_file}: OK ({len(full.targets)} targets{mine})")
        for target in config.targets:
            print(
                f"  {target.name}: credentials from {describe_credentials(target)}; "
                f"sources: {describe_sources(target.sources)}"
            )
        return EXIT_OK
    if shard.count > 1:
        log.info(
            "sharding",
            extra={
                "fields": {
                    "shard": f"{shard.index}/{shard.count}",
                    "targets": len(config.targets),
                    "of": len(full.targets),
                }
            },
        )

    def reader() -> Config:
        return shard.select(load_config(args.config_file))

    return asyncio.run(
        serve(
            config,
            listener,
            load_config=reader,
            enable_lifecycle=lifecycle,
            early=early,
            hooks=hooks,
            tuning=tuning,
        )
    )


def _listener(args: argparse.Namespace) -> Listener:
    try:
        host, port = parse_listen_address(args.listen_address)
    except ValueError as exc:
        raise ValueError(f"--web.listen-address: {exc}") from None
    requested = parse_max_connections(args.max_connections)
    limits = ConnectionLimits(
        max_connections=connection_cap(requested),
        header_timeout=parse_header_timeout(args.header_timeout),
    )
    if limits.max_connections < requested:
        log.warning(
            "--web.max-connections lowered to a quarter of the open-files limit (ulimit -n)",
            extra={"fields": {"requested": requested, "max_connections": limits.max_connections}},
        )
    grafana = parse_grafana_url(args.grafana_url) if args.grafana_url is not None else None
    if args.web_config_file is None:
        return Listener(host, port, limits=limits, grafana_url=grafana)
    web = load_web_settings(args.web_config_file)
    return Listener(host, port, web, limits, args.web_config_file, grafana)


async def _run_demo(
    listener: Listener,
    scenario: str,
    *,
    enable_lifecycle: bool,
    early: EarlySignals,
    hooks: ExporterHooks | None,
    tuning: ProcessTuning,
) -> int:
    async with demo_config(scenario=scenario) as config:
        log.info(
            "demo mode: polling the built-in DLI simulator",
            extra={"fields": {"targets": ",".join(t.name for t in config.targets)}},
        )
        return await serve(
            config,
            listener,
            enable_lifecycle=enable_lifecycle,
            early=early,
            hooks=hooks,
            tuning=tuning,
        )


async def serve(
    config: Config,
    listener: Listener,
    *,
    load_config: ConfigLoader | None = None,
    enable_lifecycle: bool = False,
    early: EarlySignals | None = None,
    hooks: ExporterHooks | None = None,
    tuning: ProcessTuning | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM, reloading on SIGHUP; returns the exit code.

    A SIGHUP recorded by ``early`` before serving began triggers one reload once serving.
    ``hooks`` and ``tuning`` are passed to `create_app` (no tuning by default: `main` asks).
    """
    path = listener.web_config_file
    live = LiveWebConfig(
        listener.web, functools.partial(load_web_settings, path) if path is not None else None
    )
    app = create_app(
        config,
        load_config=load_config,
        web_config_live=live,
        enable_lifecycle=enable_lifecycle,
        hooks=hooks,
        tuning=tuning,
        grafana_url=listener.grafana_url,
    )
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    try:
        tls = live.settings.tls
        site = GuardedSite(
            runner,
            listener.host,
            listener.port,
            limits=listener.limits,
            registry=app[EXPORTER].registry,
            ssl_context=tls,
        )
        live.subscribe(lambda settings: site.set_ssl_context(settings.tls))
        try:
            await site.start()
        except OSError as exc:
            address = f"{listener.host or ''}:{listener.port}"
            log.error("cannot listen", extra={"fields": {"address": address, "error": str(exc)}})
            return EXIT_FAILURE
        scheme = "https" if tls else "http"
        for address in runner.addresses:
            log.info("listening", extra={"fields": {"address": _format_address(address, scheme)}})
        await _wait_for_stop_signal(app[EXPORTER].request_reload, early)
        log.info("shutting down")
    finally:
        await runner.cleanup()
    return EXIT_OK


async def _wait_for_stop_signal(reload: Callable[[], None], early: EarlySignals | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    if early is not None and early.take_reload_request():
        log.info("SIGHUP received during start-up; reloading now")
        reload()
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        # remove_signal_handler restores SIGHUP's default action, which would end the process
        # mid-shutdown: record (and ignore) it instead.
        if early is not None:
            early.install()


def _format_address(address: object, scheme: str) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{address[1]}"
    return str(address)


def _hostname() -> str:
    """This host's name: ``HOSTNAME`` (a pod's name in Kubernetes), else the kernel's."""
    return os.environ.get("HOSTNAME") or socket.gethostname()
