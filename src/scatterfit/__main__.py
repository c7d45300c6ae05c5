"""python -m scatterfit: the command line."""

from scatterfit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
