"""Entry point: parse the command line, read the environment once, hand over to the CLI."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from bot.cli.main import main as cli_main

    sys.exit(cli_main(sys.argv[1:], dict(os.environ)))


if __name__ == "__main__":
    main()
