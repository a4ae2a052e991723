"""Command-line programs: `ikejax` (`main`), `ikejax-degrade` (`degrade`), `ikejax-metrics`
(`metrics`). Flags are defined here only, and only when a program runs."""
