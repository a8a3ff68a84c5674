"""hpo with the libraries people train with: scikit-learn's search API (`SearchCV`), and
callbacks that stream a framework's training into ``report`` (`hpo.integrations.xgboost`,
`hpo.integrations.lightgbm`, `hpo.integrations.lightning`; each an optional extra)."""

from hpo.integrations.searchcv import SearchCV

__all__ = ["SearchCV"]
