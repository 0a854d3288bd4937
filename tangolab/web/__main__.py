"""`python -m tangolab.web serve|adduser ...`: as `tangolab web`, without the rest of the CLI."""

import argparse
import sys

from .command import add_web_command

parser = argparse.ArgumentParser(prog="tangolab")
commands = parser.add_subparsers(dest="command", required=True)
add_web_command(commands)
args = parser.parse_args(["web", *sys.argv[1:]])
sys.exit(args.run(args))
