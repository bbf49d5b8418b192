"""scikit-learn's bundled data sets as data problems, the way the trust tables use them:
standardised, except ``digits/16`` (pixels scaled to [0, 1], the well-fitted case)."""
from functools import lru_cache

from sklearn import datasets

from sgdyn.theory.problem import Problem

LOADERS = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
           "wine": datasets.load_wine, "diabetes": datasets.load_diabetes}


@lru_cache(maxsize=None)
def bundled(name: str) -> Problem:
    if name == "digits/16":
        X, y = datasets.load_digits(return_X_y=True)
        return Problem.from_rows(X / 16.0, y, name=name)
    X, y = LOADERS[name](return_X_y=True)
    return Problem.from_rows(X, y, standardize_data=True, name=name)
