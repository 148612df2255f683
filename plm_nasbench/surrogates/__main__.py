"""``python -m plm_nasbench.surrogates``: rebuild the surrogates and their report from the tables."""

from .build import main

main()
