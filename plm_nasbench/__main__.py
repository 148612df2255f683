"""``python -m plm_nasbench``: the ``plm-nasbench`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
