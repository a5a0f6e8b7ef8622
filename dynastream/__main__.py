"""
`python -m dynastream`: the `dynastream` command.
"""

import sys

from ._cli import main

sys.exit(main())
