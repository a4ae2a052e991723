"""`python -m ikejax.main`, kept for existing scripts: the `ikejax` program (`ikejax.cli.main`)."""

if __name__ == "__main__":
  from ikejax.cli.main import run_cli
  run_cli()
