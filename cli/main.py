"""Entry point: `imagebot imagine|worker|telegram|discord`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

from pydantic import ValidationError

from cli.redaction import Redactor, install, mask_uncaught
from core.commands.uploads import limit_decoding
from core.errors import ConfigError, ImagebotError
from core.settings import Settings, load_settings, updated

QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "botocore", "diffusers", "transformers", "arq.worker")


def configure_logging(level: str, settings: Settings) -> Redactor:
    """Log to stderr at `level`, with every secret in `settings` masked in every record and traceback
    (cli/redaction.py); returns the redactor, for anything printed to stderr directly."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:  # httpx logs full URLs at INFO, and Telegram URLs contain the bot token
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    redactor = Redactor.from_settings(settings)
    install(redactor)
    mask_uncaught(redactor)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return redactor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagebot", description="An image-generation chat bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    imagine = commands.add_parser("imagine", help="make images from a prompt, right here (no tokens needed)")
    imagine.add_argument("prompt", help='e.g. "a lighthouse at dusk --ar 16:9 --seed 7 --model tiny"')
    worker = commands.add_parser(
        "worker",
        help="run a worker against IMAGEBOT_REDIS_URL (SIGTERM: finish or hand back jobs, then exit)",
    )
    worker.add_argument("--queue", choices=("gpu", "cloud", "all"), default="all")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument(
        "--processes",
        type=_count,
        default=1,
        help="run this many worker processes together (a CPU-only machine: one per core; see cli/processes.py)",
    )
    telegram = commands.add_parser("telegram", help="run the Telegram bot")
    telegram.add_argument("--with-worker", action="store_true", help="also run a worker in this process")
    discord = commands.add_parser("discord", help="run the Discord bot")
    discord.add_argument("--sync", action="store_true", help="publish the slash commands, then exit")
    discord.add_argument("--with-worker", action="store_true", help="also run a worker in this process")
    web = commands.add_parser(
        "web", help="run the web front end (no settings: everything on this machine, for one local user)"
    )
    web.add_argument("--host", help="listen on this address (IMAGEBOT_WEB__HOST, default 127.0.0.1)")
    web.add_argument("--port", type=int, help="listen on this port (IMAGEBOT_WEB__PORT, default 8790)")
    web.add_argument(
        "--with-worker",
        action="store_true",
        default=None,
        help="also run a worker in this process (the default on the embedded Redis)",
    )
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "imagine":
        from cli.imagine import imagine

        return await imagine(settings, args.prompt)
    if args.command == "web":
        from cli.web import run_web

        return await run_web(_listening(settings, args.host, args.port), with_worker=args.with_worker)
    if args.command == "worker":
        from worker.heartbeat import default_worker_id
        from worker.main import queues_for, run_worker_process

        if not settings.redis_url:
            raise ConfigError(
                "IMAGEBOT_REDIS_URL: a standalone worker needs the bots' Redis (redis://host:6379/0)"
            )
        queues = queues_for(settings, args.queue)
        if args.processes > 1:
            from cli.processes import start, supervise, worker_ids

            children = await start(settings, args.processes, args.queue, args.burst)
            async with _worker_health(settings, worker_ids(settings, children, queues)):
                return await supervise(children, args.burst)
        async with _worker_health(settings, [settings.worker.name or default_worker_id(q) for q in queues]):
            handed_back = await run_worker_process(settings, queues, burst=args.burst)
        if handed_back:
            _exit_now(0)
        return 0
    from cli.bots import run_bot

    return await run_bot(
        args.command, settings, sync=getattr(args, "sync", False), with_worker=args.with_worker
    )


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return int(text)


def _listening(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with `imagebot web --host/--port`, checked like IMAGEBOT_WEB__HOST/PORT (ConfigError)."""
    listen = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    try:
        return updated(settings, {"web": listen})
    except ValidationError as exc:
        problems = [f"--{error['loc'][-1]}: {error['msg']}" for error in exc.errors()]
        raise ConfigError("; ".join(problems)) from None


@asynccontextmanager
async def _worker_health(settings: Settings, ids: list[str]) -> AsyncIterator[None]:
    """/metrics, /healthz and /readyz for a worker process: ready while Redis answers and the workers `ids`
    (its own, or its children's) serve."""
    from cli.health import health_endpoints, queue_depth, redis_check, workers_check
    from core.jobs.connection import connect

    assert settings.redis_url is not None
    redis = connect(settings.redis_url, socket_connect_timeout=2)
    try:
        async with health_endpoints(
            settings,
            {"redis": redis_check(redis), "workers": workers_check(redis, ids)},
            [queue_depth(redis)],
        ):
            yield
    finally:
        await redis.aclose()


def _exit_now(code: int) -> NoReturn:
    """Exit without waiting for render threads, which cannot be interrupted: their jobs are back in the queue
    already, and a normal exit would wait for each thread to finish its render."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"imagebot: {exc.message}", file=sys.stderr)
        return 2
    redactor = configure_logging(settings.log_level if args.command != "imagine" else "WARNING", settings)
    limit_decoding(settings.limits.max_upload_pixels)  # Pillow refuses bombs wherever an image is decoded
    try:
        return asyncio.run(_run(args, settings))
    except ConfigError as exc:
        print(f"imagebot: {redactor.redact(exc.message)}", file=sys.stderr)
        return 2
    except ImagebotError as exc:
        print(f"imagebot: {redactor.redact(exc.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
