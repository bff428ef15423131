"""What every entry shares: argument parsing of JSON params, logging, a clean error exit."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable


def parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description)


def json_arg(text: str):
    return json.loads(text)


def run(main: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """Run an entry; a known input error exits 1 with one readable line instead of a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        main(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        logging.getLogger("swingflow").error("%s", exc)
        print(f"swingflow error: {exc}", file=sys.stderr)
        sys.exit(1)
