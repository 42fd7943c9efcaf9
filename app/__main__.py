"""`python -m app ...` is the `backtester` command (handy where the script is not on PATH)."""

from app.cli import main

if __name__ == "__main__":
    main(prog_name="backtester")
