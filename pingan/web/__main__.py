"""``python -m pingan.web [--host 127.0.0.1] [--port 8400]``: serve the evidence page with uvicorn.

The main job (``pingan up``) starts it this way; ``pingan web`` does the same from the shell.
It logs the address it serves and never a signing key, a password or a session.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("pingan.web")


def serve(host: str | None = None, port: int | None = None) -> int:
    import os

    import uvicorn

    from pingan.core.settings import get_settings
    from pingan.web.app import create_app

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
        host, port = host or settings.web_host, port or settings.web_port
        app = create_app()
    except ValueError as exc:  # a weak or demo key outside demo mode, a broken catalog, a bad setting
        log.error("evidence page not started: %s", exc)
        return 2
    log.info("evidence page serving on http://%s:%s — review at /review; hand-in links look like %s/e/…",
             host, port, settings.base_url.rstrip("/"))
    if settings.demo:
        log.warning("demo mode: demo accounts sign in with the published password pingan-demo")
    if os.environ.get("PINGAN_OPERATOR_PASSWORD"):
        log.warning("PINGAN_OPERATOR_PASSWORD is no longer used: reviewers sign in with their own accounts "
                    "(pingan account add)")
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, server_header=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pingan.web", description="serve pingan's evidence page")
    parser.add_argument("--host", default=None, help="address to listen on (default PINGAN_WEB_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default PINGAN_WEB_PORT, 8400)")
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
