"""Data loaders (IDX, CSV, NPZ, scikit-learn's bundled files), the split, labels and scalers."""

import gzip
import importlib.util
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule.data import (
    BUILTINS,
    SCALERS,
    Dataset,
    MinMaxScaler,
    Standardizer,
    encode_labels,
    load_builtin,
    load_csv,
    load_dataset,
    load_idx,
    load_idx_folder,
    load_npz,
    make_scaler,
    one_hot,
    scaler_from_config,
    train_test_split,
)

# The built-ins read scikit-learn's files without importing it; so do these skips (the import
# costs seconds).
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="scikit-learn is not installed")

# --- IDX files written by the tests -----------------------------------------------------------

_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr``, written from the format's description."""
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    head = bytes([0, 0, _CODES[big.dtype], arr.ndim])
    head += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + big.tobytes()


def write_idx(path, arr, compress=False):
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.fixture
def tiny_images(rng):
    return rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_images_and_labels_raw_and_gzip(tmp_path, tiny_images, compress):
    labels = np.arange(12, dtype=np.uint8) % 10
    images = load_idx(write_idx(tmp_path / "img", tiny_images, compress))
    got_labels = load_idx(write_idx(tmp_path / "lab", labels, compress))
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, tiny_images)
    np.testing.assert_array_equal(got_labels, labels)
    assert images.flags.writeable


def test_idx_magic_for_mnist_images_is_0x0803(tiny_images):
    assert idx_bytes(tiny_images)[:4] == (0x0803).to_bytes(4, "big")


@pytest.mark.parametrize("dtype", ["i1", ">i2", ">i4", ">f4", ">f8"])
def test_idx_other_element_types(tmp_path, rng, dtype):
    arr = (rng.normal(size=(3, 4)) * 50).astype(dtype)
    got = load_idx(write_idx(tmp_path / "x", arr))
    assert got.dtype.isnative and got.dtype.kind == np.dtype(dtype).kind
    np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02", r"truncated: .*3 items"),
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), "truncated IDX header"),
        (b"\x01\x02\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "magic number 0x01020801"),
        (b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00", "magic number 0x00000701"),
        (b"\x00\x00\x08\x00", "magic number 0x00000800"),
        (b"\x00\x00", "only 2 bytes"),
        (b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x05\x06", "1 bytes after the 1 items"),
    ],
)
def test_idx_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        load_idx(path)
    assert str(path) in str(err.value)


def test_idx_truncated_body_counts_complete_items(tmp_path, tiny_images):
    raw = idx_bytes(tiny_images)
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(raw[: 16 + 5 * 784 + 100]))
    with pytest.raises(ValueError, match=r"declares 12 items of 28x28 \(9,408 bytes\) but only "
                                         r"4,020 bytes follow \(5 complete items\)"):
        load_idx(path)


def test_idx_corrupted_gzip(tmp_path, tiny_images):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(tiny_images))[:200])
    with pytest.raises(ValueError, match="corrupted or truncated gzip"):
        load_idx(path)


def _idx_folder(folder, rng, n_train=30, n_test=10, compress=True, dotted=False):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    sep = "." if dotted else "-"
    data_sets = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{stem}-images{sep}idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{stem}-labels{sep}idx1-ubyte{suffix}", labels, compress)
        data_sets[stem] = (images, labels)
    return data_sets


@pytest.mark.parametrize(("compress", "dotted"), [(True, False), (False, True)])
def test_idx_folder_flattens_and_scales_images(tmp_path, rng, compress, dotted):
    written = _idx_folder(tmp_path / "digits", rng, compress=compress, dotted=dotted)
    ds = load_idx_folder(tmp_path / "digits")
    images, labels = written["train"]
    assert ds.X.shape == (30, 784) and ds.X.dtype == np.float32
    assert ds.X_test.shape == (10, 784)
    np.testing.assert_allclose(ds.X, images.reshape(30, -1) / 255.0, rtol=1e-6)
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    np.testing.assert_array_equal(ds.y, labels)
    assert ds.y.dtype == np.int64 and ds.task == "classification"
    assert ds.class_names == [str(d) for d in range(10)] and ds.name == "digits"


def test_idx_folder_without_test_files(tmp_path, rng):
    _idx_folder(tmp_path / "f", rng)
    for p in (tmp_path / "f").glob("t10k*"):
        p.unlink()
    ds = load_idx_folder(tmp_path / "f")
    assert ds.X_test is None and ds.y_test is None and len(ds.X) == 30


def test_idx_folder_missing_labels_lists_what_it_looked_for(tmp_path, rng):
    _idx_folder(tmp_path / "f", rng)
    (tmp_path / "f" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"train_labels; looked for train-labels-idx1-ubyte / "
                                         r"train-labels\.idx1-ubyte"):
        load_idx_folder(tmp_path / "f")


def test_idx_folder_count_mismatch(tmp_path, rng):
    _idx_folder(tmp_path / "f", rng)
    write_idx(tmp_path / "f" / "train-labels-idx1-ubyte.gz", np.zeros(29, np.uint8), True)
    with pytest.raises(ValueError, match=r"30 images but train-labels-idx1-ubyte\.gz holds 29"):
        load_idx_folder(tmp_path / "f")


def test_idx_folder_swapped_files(tmp_path, rng):
    _idx_folder(tmp_path / "f", rng)
    folder = tmp_path / "f"
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros(30, np.uint8), True)
    with pytest.raises(ValueError, match="swapped"):
        load_idx_folder(folder)


def test_fashion_folder_gets_class_names(tmp_path, rng):
    _idx_folder(tmp_path / "fashion-mnist", rng)
    ds = load_idx_folder(tmp_path / "fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def _linked_copy(source, folder):
    """``folder`` holding links to the files of ``source`` (the published IDX files)."""
    folder.mkdir(parents=True)
    for file in source.iterdir():
        (folder / file.name).symlink_to(file)


def test_named_data_found_through_env_var(shared_data, tmp_path, monkeypatch):
    _linked_copy(shared_data / "mnist", tmp_path / "store" / "mnist")
    monkeypatch.setenv("CHAINRULE_DATA_DIR", str(tmp_path / "store"))
    ds = load_dataset("mnist", download=False)
    assert ds.name == "mnist" and ds.X.shape == (60000, 784) and ds.X_test.shape == (10000, 784)


def test_named_data_that_is_not_the_published_files_is_refused(tmp_path, rng, monkeypatch):
    # Made-up IDX files under the name mnist: loaded by their folder, refused by the name.
    _idx_folder(tmp_path / "store" / "mnist", rng)
    monkeypatch.setenv("CHAINRULE_DATA_DIR", str(tmp_path / "store"))
    assert load_dataset(str(tmp_path / "store" / "mnist")).X.shape == (30, 784)
    with pytest.raises(ValueError, match=r"does not hold the published mnist files \(train-"):
        load_dataset("mnist", download=False)


def test_named_data_found_in_the_download_cache(shared_data, tmp_path, monkeypatch):
    # With CHAINRULE_DATA_DIR unset, the platform's user cache folder is where downloads live.
    _linked_copy(shared_data / "fashion-mnist", tmp_path / "cache" / "fashion-mnist")
    monkeypatch.delenv("CHAINRULE_DATA_DIR", raising=False)
    monkeypatch.setattr("chainrule.download._platform_cache", lambda: tmp_path / "cache")
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.name == "fashion-mnist" and ds.class_names[1] == "Trouser"


def test_named_data_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", download=False)
    message = str(err.value)
    assert "\n" not in message
    for part in (str(tmp_path / "empty" / "mnist"), "chainrule data download mnist",
                 "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "by hand"):
        assert part in message


# --- the real MNIST and Fashion-MNIST files ---------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_labels(shared_data):
    train = load_idx(shared_data / "mnist" / "train-labels-idx1-ubyte.gz")
    test = load_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert train.shape == (60000,) and test.shape == (10000,)
    assert np.bincount(train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test).tolist() == MNIST_TEST_COUNTS


def test_real_mnist_test_images(shared_data):
    images = load_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert round(float(images.mean()), 2) == 33.79


def test_real_fashion_mnist_test_set(shared_data):
    images = load_idx(shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    labels = load_idx(shared_data / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert round(float(images.mean()), 2) == 73.15
    assert np.bincount(labels).tolist() == [1000] * 10


def test_real_mnist_test_split_as_features(shared_data, tmp_path):
    # A folder holding only the (small) test files, linked, so the 47 MB training file is not read.
    folder = tmp_path / "mnist"
    folder.mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        src = shared_data / "mnist" / f"t10k-{kind}-ubyte.gz"
        (folder / f"train-{kind}-ubyte.gz").symlink_to(src)
    ds = load_idx_folder(folder)
    assert ds.X.shape == (10000, 784) and ds.X.dtype == np.float32
    assert ds.X.max() == 1.0 and ds.X.min() == 0.0
    assert abs(float(ds.X.mean()) * 255 - 33.79) < 0.01


# --- CSV ------------------------------------------------------------------------------------


def test_csv_named_target_and_text_labels(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("weight,kind,height\n4.0,cat,25\n30,dog,60\n5,cat,24\n\n")
    ds = load_csv(path, target="kind")
    np.testing.assert_array_equal(ds.X, [[4, 25], [30, 60], [5, 24]])
    assert ds.y.tolist() == ["cat", "dog", "cat"]
    assert ds.task == "classification" and ds.class_names == ["cat", "dog"]
    assert ds.feature_names == ["weight", "height"] and ds.name == "pets.csv"


def test_csv_default_target_is_last_column_and_integer_classes(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,1\n")
    ds = load_csv(path)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 2, 1]
    assert ds.task == "classification" and ds.X.shape == (4, 2)


def test_csv_continuous_target_is_regression(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("x,price\n" + "".join(f"{i},{i * 1.5 + 0.25}\n" for i in range(30)))
    ds = load_csv(path)
    assert ds.task == "regression" and ds.y.dtype == np.float64 and ds.class_names is None
    assert ds.y[3] == 4.75


def test_csv_many_integer_values_is_regression_unless_told(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i * 7}\n" for i in range(25)))
    assert load_csv(path).task == "regression"
    assert load_csv(path, task="classification").task == "classification"


def test_csv_unknown_target_lists_the_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="no column named 'z'; the columns are: a, b, c"):
        load_csv(path, target="z")


def test_csv_text_feature_is_refused_by_name(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("size,color,y\n1,red,0\n2,blue,1\n")
    with pytest.raises(ValueError, match=r"column 'color' is not numeric \(line 2: 'red'\)"):
        load_csv(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a,b\n", "only a header row"),
        ("1,2\n3,4\n", "looks like data"),
        ("a,b,y\n1,2\n", "line 2 has 2 fields but the header has 3"),
        ("a,b,y\n1,,0\n", "column 'b' is empty on line 2"),
        ("a,b,y\n1,nan,0\n", "column 'b' holds nan on line 2"),
        ("a,b,y\n1,2,\n", "target column 'y' is empty on line 2"),
        ("a,a,y\n1,2,0\n", "appear more than once"),
        ("abc\n1\n", "one column"),
    ],
)
def test_csv_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_csv(path)
    assert str(path) in str(err.value)


def test_csv_semicolons_quotes_and_gzip(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b'\xef\xbb\xbfa;b;"the, label"\n1;2;"x, y"\n3;4;z\n'))
    ds = load_dataset(str(path), target="the, label")
    assert ds.y.tolist() == ["x, y", "z"] and ds.X.tolist() == [[1, 2], [3, 4]]


# --- NPZ ------------------------------------------------------------------------------------


def test_npz_with_test_split(tmp_path, rng):
    X, Xt = rng.normal(size=(20, 3)), rng.normal(size=(5, 3))
    y, yt = rng.integers(0, 3, 20), rng.integers(0, 3, 5)
    np.savez(tmp_path / "d.npz", X=X, y=y, X_test=Xt, y_test=yt)
    ds = load_dataset(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y_test, yt)
    assert ds.task == "classification" and ds.X_test.shape == (5, 3)


def test_npz_uint8_images_are_flattened_and_scaled(tmp_path, rng):
    X = rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
    np.savez_compressed(tmp_path / "img.npz", X=X, y=np.arange(6) % 2)
    ds = load_npz(tmp_path / "img.npz")
    assert ds.X.shape == (6, 16) and ds.X.dtype == np.float32
    np.testing.assert_allclose(ds.X, X.reshape(6, 16) / 255, rtol=1e-6)


def test_npz_float_targets_are_regression(tmp_path, rng):
    np.savez(tmp_path / "r.npz", X=rng.normal(size=(8, 2)), y=rng.normal(size=8))
    assert load_npz(tmp_path / "r.npz").task == "regression"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"features": np.zeros((2, 2)), "y": np.zeros(2)}, "no array named 'X'.*holds 'features'"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(2)}, "X has 3 rows but y has 2"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, r"must be 2-D .*reshape\(-1, 1\)"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(2), "X_test": np.zeros((1, 2))}, "come together"),
        ({"X": np.array([[1.0, np.inf]]), "y": np.zeros(1)}, "holds inf at row 0, column 1"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(2), "X_test": np.zeros((1, 3)),
          "y_test": np.zeros(1)}, "X has 2 features but X_test has 3"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_npz(tmp_path / "bad.npz")


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match=r"Python objects.*does not unpickle"):
        load_npz(tmp_path / "obj.npz")


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "fake.npz").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match="not an NPZ archive"):
        load_npz(tmp_path / "fake.npz")


def test_npz_corrupted_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as zf:
        zf.writestr("X.npy", b"not an npy file")
        zf.writestr("y.npy", b"nor this")
    with pytest.raises(ValueError, match="corrupted NPZ"):
        load_npz(tmp_path / "x.npz")


# --- built-in data sets ---------------------------------------------------------------------

EXPECTED = {"digits": ((1797, 64), 10), "breast_cancer": ((569, 30), 2), "iris": ((150, 4), 3),
            "wine": ((178, 13), 3), "diabetes": ((442, 10), 0)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@needs_sklearn
def test_builtin_shapes_and_classes(name):
    ds = load_builtin(name)
    shape, n_classes = EXPECTED[name]
    assert ds.X.shape == shape and len(ds.y) == shape[0]
    assert len(ds.feature_names) == shape[1]
    if n_classes:
        assert ds.task == "classification" and ds.y.dtype == np.int64
        assert sorted(set(ds.y.tolist())) == list(range(n_classes))
        assert len(ds.class_names) == n_classes
    else:
        assert ds.task == "regression" and ds.class_names is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtins_equal_what_scikit_learn_loads(name):
    datasets = pytest.importorskip("sklearn.datasets")
    loader = getattr(datasets, f"load_{name}")
    ref = loader(scaled=False) if name == "diabetes" else loader()
    ds = load_builtin(name)
    np.testing.assert_array_equal(ds.X, ref.data)
    np.testing.assert_array_equal(ds.y, ref.target)
    assert ds.feature_names == list(ref.feature_names)
    if name != "diabetes":
        assert ds.class_names == [str(c) for c in ref.target_names]


@needs_sklearn
def test_builtin_loading_does_not_import_sklearn():
    code = ("import sys, chainrule.data as d; ds = d.load_dataset('digits'); "
            "print(ds.X.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1797, 64) False"


def test_builtin_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[sklearn\]".*CSV or NPZ'):
        load_builtin("iris")


def test_unknown_builtin_lists_them():
    with pytest.raises(ValueError, match="choose one of digits, breast_cancer, iris"):
        load_builtin("cifar")


# --- the dispatcher -------------------------------------------------------------------------


def test_load_dataset_dispatches_on_name_folder_and_suffix(tmp_path, rng):
    _idx_folder(tmp_path / "idx", rng)
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,1\n")
    np.savez(tmp_path / "t.npz", X=np.zeros((2, 2)), y=np.array([0, 1]))
    assert load_dataset(str(tmp_path / "idx")).X.shape == (30, 784)
    assert load_dataset(tmp_path / "t.csv").feature_names == ["a"]
    assert load_dataset(str(tmp_path / "t.npz")).X.shape == (2, 2)
    if importlib.util.find_spec("sklearn") is not None:
        assert load_dataset("iris").name == "iris"
        assert load_dataset("Breast-Cancer").name == "breast_cancer"


def test_load_dataset_unknown_lists_the_options(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown data set 'nonsense'.*digits.*mnist.*csv.*npz"):
        load_dataset("nonsense")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="Cannot tell how to read"):
        load_dataset(str(tmp_path / "notes.txt"))


def test_load_dataset_target_only_for_csv(tmp_path):
    np.savez(tmp_path / "t.npz", X=np.zeros((2, 2)), y=np.array([0, 1]))
    with pytest.raises(ValueError, match="names a CSV column"):
        load_dataset(str(tmp_path / "t.npz"), target="y")


def test_load_dataset_missing_csv_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        load_dataset(str(tmp_path / "missing.csv"))


def test_dataset_checks_its_arrays():
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        Dataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="task must be one of"):
        Dataset(np.zeros((2, 2)), np.zeros(2), task="clustering")
    assert "Dataset('d', regression, X (2, 2)" in repr(
        Dataset(np.zeros((2, 2)), np.zeros(2), task="regression", name="d"))


# --- split ----------------------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete(rng):
    X = np.arange(100).reshape(50, 2)
    y = np.repeat([0, 1, 2, 3, 4], 10)
    a = train_test_split(X, y, test_size=0.3, seed=7)
    b = train_test_split(X, y, test_size=0.3, seed=7)
    c = train_test_split(X, y, test_size=0.3, seed=8)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    Xtr, Xte, ytr, yte = a
    assert len(Xte) == 15 and len(Xtr) == 35
    ids = np.concatenate([Xtr[:, 0], Xte[:, 0]]) // 2
    assert sorted(ids.tolist()) == list(range(50))
    np.testing.assert_array_equal(y[Xtr[:, 0] // 2], ytr)  # rows and labels stay together
    assert np.bincount(yte).tolist() == [3, 3, 3, 3, 3]


@given(counts=st.lists(st.integers(1, 40), min_size=2, max_size=6),
       test_size=st.floats(0.05, 0.6), seed=st.integers(0, 2**16))
def test_stratified_split_keeps_each_class_share(counts, test_size, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    n = len(y)
    n_test = int(np.ceil(test_size * n))
    if not 1 <= n_test <= n - 1:
        return
    X = np.zeros((n, 1))
    _, _, y_train, y_test = train_test_split(X, y, test_size=test_size, seed=seed)
    got = np.bincount(y_test, minlength=len(counts))
    assert got.sum() == n_test
    assert np.all(np.abs(got - np.array(counts) * n_test / n) < 1)
    np.testing.assert_array_equal(got + np.bincount(y_train, minlength=len(counts)), counts)


@needs_sklearn
def test_stratified_split_on_digits_proportions():
    ds = load_builtin("digits")
    _, _, _, y_test = train_test_split(ds.X, ds.y, test_size=0.2, seed=0)
    expected = np.bincount(ds.y) * len(y_test) / len(ds.y)
    assert len(y_test) == 360  # ceil(0.2 * 1797), as scikit-learn
    assert np.all(np.abs(np.bincount(y_test) - expected) < 1)


def test_unstratified_split_and_regression_targets(rng):
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=3, stratify=False, seed=0)
    assert len(Xte) == 3 and len(Xtr) == 7
    np.testing.assert_array_equal(np.sort(np.concatenate([ytr, yte])), np.sort(y))
    with pytest.raises(ValueError, match="pass stratify=False"):
        train_test_split(X, y)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, 0, 10, True, "0.2"])
def test_split_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(np.zeros((10, 1)), np.arange(10) % 2, test_size=test_size)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        train_test_split(np.zeros((4, 1)), np.zeros(3))


# --- labels ---------------------------------------------------------------------------------


def test_encode_labels_sorted_classes():
    classes, idx = encode_labels(["b", "a", "c", "a"])
    assert classes.tolist() == ["a", "b", "c"] and idx.tolist() == [1, 0, 2, 0]
    assert idx.dtype == np.int64
    classes, idx = encode_labels(np.array([10, 3, 10]))
    assert classes.tolist() == [3, 10] and (classes[idx] == [10, 3, 10]).all()


@pytest.mark.parametrize(("y", "message"), [([], "empty"), ([[1, 2]], "1-D"),
                                            ([1.0, np.nan], "NaN at index 1")])
def test_encode_labels_errors(y, message):
    with pytest.raises(ValueError, match=message):
        encode_labels(y)


def test_one_hot():
    out = one_hot(np.array([2, 0, 1]), 4, dtype=np.float64)
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert out.dtype == np.float64
    assert one_hot([1, 0]).dtype == np.float32 and one_hot([1, 0]).shape == (2, 2)


@pytest.mark.parametrize(("idx", "k", "message"), [([0, 3], 3, "Class index 3 at position 1"),
                                                    ([-1], 2, "Class index -1"),
                                                    ([0.5], 2, "integer class indices"),
                                                    ([0], 0, r"integer in the range \[1, inf\)")])
def test_one_hot_errors(idx, k, message):
    with pytest.raises(ValueError, match=message):
        one_hot(idx, k)


# --- scalers --------------------------------------------------------------------------------


def test_standardizer_values_and_constant_column():
    X = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    s = Standardizer().fit(X)
    # column 0: mean 3, std sqrt(8/3); column 1 is constant: scale 1, output 0
    np.testing.assert_allclose(s.mean_, [3, 5, 5])
    np.testing.assert_allclose(s.scale_[:2], [np.sqrt(8 / 3), 1.0])
    Z = s.transform(X)
    np.testing.assert_allclose(Z[:, 0], np.array([-2, 0, 2]) / np.sqrt(8 / 3))
    np.testing.assert_array_equal(Z[:, 1], 0.0)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, [0, 2]].std(axis=0), 1)
    np.testing.assert_allclose(s.inverse_transform(Z), X)


def test_standardizer_constant_column_with_rounding():
    X = np.full((7, 1), 0.1)  # the float64 mean is not exactly 0.1, the std not exactly 0
    assert np.all(Standardizer().fit_transform(X) == X - X.mean())
    assert np.abs(Standardizer().fit_transform(X)).max() < 1e-15


def test_minmax_scaler(rng):
    X = np.array([[0.0, 10.0, 1.0], [5.0, 20.0, 1.0], [10.0, 15.0, 1.0]])
    s = MinMaxScaler().fit(X)
    np.testing.assert_allclose(s.transform(X), [[0, 0, 0], [0.5, 1, 0], [1, 0.5, 0]])
    s2 = MinMaxScaler((-1, 1)).fit(X)
    np.testing.assert_allclose(s2.transform(X)[:, 0], [-1, 0, 1])
    np.testing.assert_allclose(s2.inverse_transform(s2.transform(X))[:, :2], X[:, :2])


@pytest.mark.parametrize("name", sorted(SCALERS))
def test_scalers_keep_float32_and_round_trip_their_config(name, rng):
    X = (rng.normal(size=(20, 4)) * 3 + 1).astype(np.float32)
    scaler = make_scaler(name)
    Z = scaler.fit_transform(X)
    assert Z.dtype == np.float32
    config = json.loads(json.dumps(scaler.get_config()))
    rebuilt = scaler_from_config(config)
    assert type(rebuilt) is type(scaler)
    np.testing.assert_array_equal(rebuilt.transform(X), Z)


def test_scaler_errors():
    with pytest.raises(ValueError, match="not fitted yet"):
        Standardizer().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not fitted yet"):
        MinMaxScaler().get_config()
    s = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="fitted on 2 features; got 3"):
        s.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="holds nan at row 1, column 0"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="choose one of standard, minmax, none"):
        make_scaler("robust")
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler((1, 1))
    assert type(make_scaler(None)).__name__ == "NoScaling"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "zscore"}, "Unknown scaler config 'zscore'"),
        ("standard", "Unknown scaler config"),
        ({"type": "standard", "mean": [0, 1], "scale": [1]}, "same length"),
        ({"type": "standard", "mean": [0], "scale": [0]}, "positive"),
        ({"type": "standard", "mean": ["a"], "scale": [1]}, "'mean' must be a list of finite"),
        ({"type": "minmax", "feature_range": [0, 1], "data_min": [2], "data_max": [1]},
         "data_min <= data_max"),
    ],
)
def test_scaler_from_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        scaler_from_config(config)


def test_builtins_registry_is_the_list_of_names():
    assert set(BUILTINS) == set(EXPECTED)


def test_idx_gzip_declaring_more_than_it_can_hold_is_refused_from_the_header(tmp_path):
    # A header declaring 60,000 x 28 x 28 images (47 MB) in a gzip file of a few hundred bytes:
    # no deflate stream expands that far, so nothing is decompressed.
    head = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (60000, 28, 28))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + b"\0" * 1000))
    reads = []
    import chainrule.data.idx as idx

    original = idx.read_bounded
    idx.read_bounded = lambda *a, **k: reads.append(a) or original(*a, **k)
    try:
        with pytest.raises(ValueError, match=r"more than a gzip file of \d+ bytes can hold"):
            load_idx(path)
    finally:
        idx.read_bounded = original
    assert reads == []


def test_idx_header_over_the_read_limit_is_refused_before_decompressing(tmp_path, monkeypatch):
    import chainrule.data.idx as idx

    monkeypatch.setattr(idx, "MAX_DATA_BYTES", 10_000)
    head = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (100, 28, 28))
    path = tmp_path / "big-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + bytes(100 * 784)))
    monkeypatch.setattr(idx, "read_bounded", lambda *a, **k: pytest.fail("decompressed"))
    with pytest.raises(ValueError, match=r"78,416 bytes\), more than the 10,000 chainrule reads"):
        load_idx(path)
