"""`python -m serving --help`: the model server (see server.py)."""

import sys

from serving.server import main

if __name__ == "__main__":
    sys.exit(main())
