"""``python -m plm_nasbench``: the ``plm-nasbench`` command."""

import sys

from .cli import main

sys.exit(main())
