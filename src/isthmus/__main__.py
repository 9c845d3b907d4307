"""`python -m isthmus`: the same command line as the `isthmus` script (cli/main.py), for
hosts where the script's directory is not on PATH or several environments sit side by side."""

import sys

from isthmus.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
