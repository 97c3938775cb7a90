"""The small data sets that scikit-learn ships, read from its data files without importing it."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np

from chainrule._extras import install_hint
from chainrule._io import read_bounded
from chainrule.data.csvfile import MAX_CSV_BYTES
from chainrule.data.dataset import Dataset

__all__ = ["BUILTINS", "load_builtin"]


def _breast_cancer_features() -> list[str]:
    parts = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
             "concave points", "symmetry", "fractal dimension"]
    return ([f"mean {p}" for p in parts] + [f"{p} error" for p in parts]
            + [f"worst {p}" for p in parts])


#: Built-in data sets: name -> (files in sklearn/datasets/data, shape of X, number of classes
#: (0 for regression), feature names, class names (None: read from the file's first line)).
BUILTINS = {
    "digits": (("digits.csv.gz",), (1797, 64), 10,
               [f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
               [str(d) for d in range(10)]),
    "breast_cancer": (("breast_cancer.csv",), (569, 30), 2, _breast_cancer_features(), None),
    "iris": (("iris.csv",), (150, 4), 3,
             ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
             None),
    "wine": (("wine_data.csv",), (178, 13), 3,
             ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
              "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
              "od280/od315_of_diluted_wines", "proline"], None),
    "diabetes": (("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"), (442, 10), 0,
                 ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], None),
}


def _sklearn_data_folder() -> Path:
    """scikit-learn's ``datasets/data`` folder, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The built-in data sets are the files that scikit-learn ships, and scikit-learn is "
            f"not installed: {install_hint('sklearn')}; or pass a CSV or NPZ file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this scikit-learn has no such data file; reinstall "
                                f"it ({install_hint('sklearn')}) or pass a CSV or NPZ file.")
    return read_bounded(path, MAX_CSV_BYTES, "CSV file").decode("utf-8")


def load_builtin(name: str) -> Dataset:
    """Load one of the small data sets that scikit-learn ships: :data:`BUILTINS`.

    ============== ========= ======== =========================================
    name           samples   features target
    ============== ========= ======== =========================================
    digits         1797      64       10 classes (8x8 images, pixels 0-16)
    breast_cancer  569       30       2 classes (malignant, benign)
    iris           150       4        3 classes
    wine           178       13       3 classes
    diabetes       442       10       regression (disease progression, 25-346)
    ============== ========= ======== =========================================

    The values are those of scikit-learn's ``load_<name>()``, except diabetes: its features are
    the raw ones (age in years, sex 1/2, ...; scikit-learn's default centres and scales them),
    which a :class:`Standardizer` puts on a common scale. scikit-learn is never imported, only
    its data files are read (a few milliseconds, against about a second for the import).
    """
    key = name.lower().replace("-", "_")
    if key not in BUILTINS:
        raise ValueError(f"Unknown built-in data set {name!r}; choose one of "
                         f"{', '.join(BUILTINS)}.")
    files, shape, n_classes, feature_names, class_names = BUILTINS[key]
    folder = _sklearn_data_folder()
    if key == "diabetes":
        X = np.loadtxt(io.StringIO(_read_text(folder / files[0])))
        y = np.loadtxt(io.StringIO(_read_text(folder / files[1])))
    else:
        text = _read_text(folder / files[0])
        if class_names is None:  # first line: n_samples, n_features, class names...
            first, text = text.split("\n", 1)
            class_names = [c.strip() for c in first.split(",")[2:]]
        table = np.loadtxt(io.StringIO(text), delimiter=",")
        if table.ndim != 2 or table.shape[1] != shape[1] + 1:
            raise ValueError(f"{folder / files[0]}: expected {shape[1] + 1} columns; got "
                             f"shape {table.shape}. Is this scikit-learn's copy intact?")
        X, y = table[:, :-1], table[:, -1]
    if X.shape != shape or y.shape != (shape[0],):
        raise ValueError(f"scikit-learn's {name} data has shapes {X.shape} and {y.shape}; "
                         f"expected {shape} and ({shape[0]},). Is the installation intact?")
    if not n_classes:
        return Dataset(np.ascontiguousarray(X), y, task="regression", name=key,
                       feature_names=list(feature_names))
    y = y.astype(np.int64)
    if len(class_names) != n_classes or set(np.unique(y).tolist()) != set(range(n_classes)):
        raise ValueError(f"scikit-learn's {name} data should have {n_classes} classes "
                         f"0..{n_classes - 1}; found labels {np.unique(y).tolist()[:12]}.")
    return Dataset(np.ascontiguousarray(X), y, task="classification", name=key,
                   feature_names=list(feature_names), class_names=list(class_names))
