"""
The `dynastream` command line: argument parsing, the commands, their progress display, the demo.

Nothing here runs inside Lambda; `dynastream._sources` does the reading.
"""

from dynastream._cli.main import main

__all__ = ["main"]
