"""``python -m docmill``."""

from docmill.cli.main import run_main

run_main()
