"""Feature scaling, fitted on the training data and stored with a model as JSON."""

from __future__ import annotations

import numpy as np

from chainrule._checks import as_float_array, check_scalar

__all__ = ["SCALERS", "MinMaxScaler", "NoScaling", "Scaler", "Standardizer", "make_scaler",
           "resolve_scale", "scaler_from_config"]


def _features(X, who: str) -> np.ndarray:
    X = as_float_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"{who} needs a 2-D array (samples, features); got shape {X.shape}.")
    return X


def _number_list(config: dict, key: str, who: str) -> np.ndarray:
    value = config.get(key)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{who} config: {key!r} must be a list of finite numbers; got "
                         f"{str(value)[:60]}.")
    return arr


class Scaler:
    """Base class: ``fit`` on training features, then ``transform`` any features alike.

    Subclasses set ``name`` (their key in :data:`SCALERS`) and implement ``fit``, ``transform``,
    ``get_config`` and ``from_config``. Fitted state ends in ``_``; ``fit`` returns ``self``.
    float32 features stay float32.
    """

    name = ""

    def fit(self, X) -> Scaler:
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Scaler:
        raise NotImplementedError

    def _check_fitted(self, X=None) -> np.ndarray | None:
        if getattr(self, "n_features_", None) is None:
            raise ValueError(f"{type(self).__name__} is not fitted yet; call fit(X_train) first.")
        if X is None:
            return None
        X = _features(X, f"{type(self).__name__}.transform")
        if X.shape[1] != self.n_features_:
            raise ValueError(f"{type(self).__name__} was fitted on {self.n_features_} features; "
                             f"got {X.shape[1]}.")
        return X

    def _check_fit_input(self, X) -> np.ndarray:
        X = _features(X, f"{type(self).__name__}.fit")
        if len(X) == 0:
            raise ValueError(f"{type(self).__name__}.fit got no samples.")
        if not np.isfinite(X).all():
            i, j = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(f"X holds {X[i, j]} at row {i}, column {j}; remove or impute "
                             "non-finite values before scaling.")
        return X

    def __repr__(self) -> str:
        n = getattr(self, "n_features_", None)
        return f"{type(self).__name__}({'unfitted' if n is None else f'{n} features'})"


def _check_scaled(scaler: Scaler, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``Z``, or a ValueError naming the feature whose finite values overflowed when scaled."""
    if np.isfinite(Z).all():
        return Z
    bad = ~np.isfinite(Z)
    if not np.isfinite(X).all():
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"X holds {X[i, j]} at row {i}, column {j}; remove or impute "
                         "non-finite values before scaling.")
    i, j = np.argwhere(bad)[0]
    raise ValueError(
        f"Scaling overflowed {Z.dtype}: feature {j} of sample {i} is {X[i, j]:.6g}, finite, but "
        f"{type(scaler).__name__} maps it beyond the largest {Z.dtype} (its training values were "
        "nearly constant or the values are too large for this type). Rescale that column, or "
        "use another scaling (minmax or none)."
    )


class Standardizer(Scaler):
    r"""Centre each feature and divide by its standard deviation: :math:`(x - \mu) / \sigma`.

    A constant feature (all values equal) gets :math:`\sigma = 1`, so it becomes 0 instead of
    dividing by zero.
    """

    name = "standard"

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_features_: int | None = None

    def fit(self, X) -> Standardizer:
        X = self._check_fit_input(X)
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        constant = X.max(axis=0) == X.min(axis=0)
        self.scale_ = np.where(constant | (std == 0), 1.0, std)
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = self._check_fitted(X)
        with np.errstate(over="ignore", invalid="ignore"):
            Z = (X - self.mean_.astype(X.dtype)) / self.scale_.astype(X.dtype)
        return _check_scaled(self, X, Z)

    def inverse_transform(self, Z) -> np.ndarray:
        Z = self._check_fitted(Z)
        return Z * self.scale_.astype(Z.dtype) + self.mean_.astype(Z.dtype)

    def get_config(self) -> dict:
        self._check_fitted()
        return {"type": self.name, "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> Standardizer:
        mean = _number_list(config, "mean", "Standardizer")
        scale = _number_list(config, "scale", "Standardizer")
        if mean.shape != scale.shape or (scale <= 0).any():
            raise ValueError("Standardizer config: 'mean' and 'scale' must have the same length "
                             "and every scale must be positive.")
        self = cls()
        self.mean_, self.scale_, self.n_features_ = mean, scale, len(mean)
        return self


class MinMaxScaler(Scaler):
    r"""Map each feature's training range onto ``feature_range``:
    :math:`lo + (x - x_{min}) (hi - lo) / (x_{max} - x_{min})`.

    A constant feature maps to ``lo``.
    """

    name = "minmax"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        lo, hi = (check_scalar(v, "feature_range", "MinMaxScaler") for v in feature_range)
        if not lo < hi:
            raise ValueError(f"feature_range must be (low, high) with low < high; got "
                             f"{tuple(feature_range)}.")
        self.feature_range = (lo, hi)
        self.data_min_: np.ndarray | None = None
        self.data_max_: np.ndarray | None = None
        self.n_features_: int | None = None

    def _coefficients(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.feature_range
        span = self.data_max_ - self.data_min_
        scale = (hi - lo) / np.where(span == 0, 1.0, span)
        return scale.astype(dtype), (lo - self.data_min_ * scale).astype(dtype)

    def fit(self, X) -> MinMaxScaler:
        X = self._check_fit_input(X)
        self.data_min_ = X.min(axis=0).astype(np.float64)
        self.data_max_ = X.max(axis=0).astype(np.float64)
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = self._check_fitted(X)
        with np.errstate(over="ignore", invalid="ignore"):
            scale, shift = self._coefficients(X.dtype)
            Z = X * scale + shift
        return _check_scaled(self, X, Z)

    def inverse_transform(self, Z) -> np.ndarray:
        Z = self._check_fitted(Z)
        scale, shift = self._coefficients(Z.dtype)
        return (Z - shift) / scale

    def get_config(self) -> dict:
        self._check_fitted()
        return {"type": self.name, "feature_range": list(self.feature_range),
                "data_min": self.data_min_.tolist(), "data_max": self.data_max_.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> MinMaxScaler:
        bounds = _number_list(config, "feature_range", "MinMaxScaler")
        if bounds.shape != (2,):
            raise ValueError(f"MinMaxScaler config: 'feature_range' must be [low, high]; got "
                             f"{config.get('feature_range')}.")
        self = cls(tuple(bounds))
        data_min = _number_list(config, "data_min", "MinMaxScaler")
        data_max = _number_list(config, "data_max", "MinMaxScaler")
        if data_min.shape != data_max.shape or (data_max < data_min).any():
            raise ValueError("MinMaxScaler config: 'data_min' and 'data_max' must have the same "
                             "length, with data_min <= data_max.")
        self.data_min_, self.data_max_, self.n_features_ = data_min, data_max, len(data_min)
        return self


class NoScaling(Scaler):
    """Leave the features as they are (``--scale none``)."""

    name = "none"

    def __init__(self):
        self.n_features_: int | None = None

    def fit(self, X) -> NoScaling:
        self.n_features_ = _features(X, "NoScaling.fit").shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        return _features(X, "NoScaling.transform")

    def get_config(self) -> dict:
        return {"type": self.name}

    @classmethod
    def from_config(cls, config: dict) -> NoScaling:
        return cls()


#: Scaler name -> class: the one list of names (``--scale`` choices, error messages).
SCALERS: dict[str, type[Scaler]] = {cls.name: cls for cls in (Standardizer, MinMaxScaler,
                                                               NoScaling)}


def make_scaler(name: str | None) -> Scaler:
    """A new, unfitted scaler by name: ``"standard"``, ``"minmax"`` or ``"none"`` (or None)."""
    key = "none" if name is None else str(name).lower()
    if key not in SCALERS:
        raise ValueError(f"Unknown scaler {name!r}; choose one of {', '.join(SCALERS)}.")
    return SCALERS[key]()


def scaler_from_config(config: dict) -> Scaler:
    """Rebuild a fitted scaler from its ``get_config()`` (as stored in a model file)."""
    if not isinstance(config, dict) or config.get("type") not in SCALERS:
        kind = config.get("type") if isinstance(config, dict) else config
        raise ValueError(f"Unknown scaler config {str(kind)[:60]!r}; the type must be one of "
                         f"{', '.join(SCALERS)}.")
    return SCALERS[config["type"]].from_config(config)


def resolve_scale(scale: str, X) -> str:
    """The scaler name for ``--scale``: "auto" is "none" for features already in [0, 1] (images,
    whose pixels the IDX loader divides by 255) and "standard" for anything else; other names
    pass through."""
    if scale != "auto":
        return scale
    X = np.asarray(X)
    if X.size and float(X.min()) >= 0.0 and float(X.max()) <= 1.0:
        return "none"
    return "standard"
