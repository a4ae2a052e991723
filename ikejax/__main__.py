"""`python -m ikejax`: the `ikejax` program (`ikejax.cli.main`)."""

from ikejax.cli.main import run_cli

run_cli()
