"""safetensors reading and writing: round trips, the reference package both ways, every kind of
damaged or foreign file, and atomic saves."""

import json
import os
import zipfile

import numpy as np
import pytest

import chainrule.serialization as ser
from chainrule.serialization import DTYPES, ModelFileError, read_safetensors, write_safetensors


def _tensors(rng):
    return {
        "0.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "0.bias": rng.normal(size=4).astype(np.float32),
        "half": rng.normal(size=(2, 2, 2)).astype(np.float16),
        "double": rng.normal(size=5),
        "counts": rng.integers(-1000, 1000, size=7),
        "mask": rng.random(6) > 0.5,
        "bytes": rng.integers(0, 256, size=3, dtype=np.uint8),
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 3), np.float32),
    }


def _craft(path, header: dict, data: bytes = b"", pad: bool = True):
    """Write a file with the given JSON header and data bytes, no validation."""
    raw = json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def _header(path) -> dict:
    raw = path.read_bytes()
    return json.loads(raw[8: 8 + int.from_bytes(raw[:8], "little")])


# --- round trips ------------------------------------------------------------------------------


def test_round_trip_keeps_values_dtypes_shapes_and_metadata(tmp_path, rng):
    tensors = _tensors(rng)
    path = write_safetensors(tmp_path / "m.safetensors", tensors, {"format": "pt", "x": "{}"})
    loaded, meta = read_safetensors(path)
    assert meta == {"format": "pt", "x": "{}"}
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        value = np.asarray(value)
        assert loaded[name].dtype == value.dtype, name
        assert loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value)


@pytest.mark.parametrize("code", sorted(DTYPES))
def test_every_supported_dtype_round_trips(tmp_path, code):
    dtype = DTYPES[code]
    values = np.array([0, 1, 0, 1, 1, 0], dtype=dtype) if code == "BOOL" else (
        np.arange(6).astype(dtype) * (1 if dtype.kind != "f" else 0.5))
    values = values.reshape(2, 3)
    write_safetensors(tmp_path / "t.safetensors", {"t": values})
    assert _header(tmp_path / "t.safetensors")["t"]["dtype"] == code
    np.testing.assert_array_equal(read_safetensors(tmp_path / "t.safetensors")[0]["t"], values)


def test_arrays_read_are_writable_native_copies(tmp_path):
    write_safetensors(tmp_path / "a.safetensors", {"a": np.arange(4, dtype=">i4")})
    (a,) = read_safetensors(tmp_path / "a.safetensors")[0].values()
    assert a.flags.writeable and a.flags.c_contiguous and a.dtype.isnative
    a[0] = 99  # writable: no error
    assert read_safetensors(tmp_path / "a.safetensors")[0]["a"][0] == 0


def test_big_endian_and_non_contiguous_inputs_are_stored_by_value(tmp_path):
    big = np.arange(6, dtype=">f8").reshape(2, 3)
    transposed = np.arange(6, dtype=np.float32).reshape(2, 3).T
    write_safetensors(tmp_path / "a.safetensors", {"big": big, "t": transposed})
    loaded, _ = read_safetensors(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(loaded["big"], big)
    np.testing.assert_array_equal(loaded["t"], [[0, 3], [1, 4], [2, 5]])
    # little-endian on disk: bytes of 1.0 as float64 LE at the start of "big"'s data
    raw = (tmp_path / "a.safetensors").read_bytes()
    assert np.float64(1.0).astype("<f8").tobytes() in raw


def test_layout_header_padded_and_tensors_aligned(tmp_path, rng):
    path = write_safetensors(tmp_path / "m.safetensors", _tensors(rng), {"k": "v"})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0
    header = _header(path)
    assert next(iter(header)) == "__metadata__"
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    for entry in (v for k, v in header.items() if k != "__metadata__"):
        begin = entry["data_offsets"][0]
        assert begin % DTYPES[entry["dtype"]].itemsize == 0  # every tensor starts aligned
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - 8 - n


# --- the reference package, both ways ---------------------------------------------------------


def test_safetensors_package_reads_our_files(tmp_path, rng):
    st = pytest.importorskip("safetensors")
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = _tensors(rng)
    path = write_safetensors(tmp_path / "ours.safetensors", tensors, {"format": "pt", "a": "b"})
    theirs = st_numpy.load_file(str(path))
    assert sorted(theirs) == sorted(tensors)
    for name, value in tensors.items():
        assert theirs[name].dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(theirs[name], value)
    with st.safe_open(str(path), framework="numpy") as fh:
        assert fh.metadata() == {"format": "pt", "a": "b"}


def test_we_read_files_of_the_safetensors_package(tmp_path, rng):
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: np.asarray(v) for k, v in _tensors(rng).items()}
    st_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"m": "1"})
    loaded, meta = read_safetensors(tmp_path / "theirs.safetensors")
    assert meta == {"m": "1"}
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_we_read_a_file_without_metadata_from_the_package(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    st_numpy.save_file({"w": np.ones((2, 2), np.float32)}, str(tmp_path / "w.safetensors"))
    loaded, meta = read_safetensors(tmp_path / "w.safetensors")
    assert meta == {}
    np.testing.assert_array_equal(loaded["w"], np.ones((2, 2)))


# --- refusals when writing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensors", "metadata", "message"),
    [
        ({"a": np.zeros(2)}, {"n": 3}, r"metadata\['n'\] must be a str; got int 3.*json.dumps"),
        ({"a": np.zeros(2)}, {1: "x"}, "metadata keys must be str"),
        ({"a": np.zeros(2)}, ["x"], "metadata must be a dict"),
        ({"a": np.array(["x", "y"])}, None, "Tensor 'a' has dtype <U1.*Convert it first"),
        ({"a": np.array([object()])}, None, "Tensor 'a' has dtype object"),
        ({"c": np.zeros(2, np.complex128)}, None, "Tensor 'c' has dtype complex128"),
        ({"__metadata__": np.zeros(2)}, None, "reserved"),
        ({3: np.zeros(2)}, None, "Tensor names must be str"),
        ([np.zeros(2)], None, "tensors must be a dict"),
    ],
)
def test_write_refuses_what_safetensors_cannot_hold(tmp_path, tensors, metadata, message):
    with pytest.raises(ValueError, match=message):
        write_safetensors(tmp_path / "x.safetensors", tensors, metadata)
    assert os.listdir(tmp_path) == []


def test_write_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_safetensors(tmp_path / "nope" / "x.safetensors", {"a": np.zeros(1)})


# --- atomicity --------------------------------------------------------------------------------


def _good_file(tmp_path):
    path = write_safetensors(tmp_path / "model.safetensors", {"w": np.arange(3.0)})
    return path, path.read_bytes()


def test_failure_while_writing_data_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path, before = _good_file(tmp_path)
    calls = []
    real = ser._write_array

    def fail_on_second(fh, arr):
        calls.append(arr.shape)
        if len(calls) == 2:
            raise OSError("No space left on device")
        real(fh, arr)

    monkeypatch.setattr(ser, "_write_array", fail_on_second)
    with pytest.raises(OSError, match="No space left"):
        write_safetensors(path, {"a": np.ones(100), "b": np.ones(100)})
    assert len(calls) == 2  # it did fail mid-way, after writing one tensor
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_interrupt_before_rename_keeps_old_file(tmp_path, monkeypatch):
    path, before = _good_file(tmp_path)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(ser.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_safetensors(path, {"w": np.zeros(1000)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(ser.os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        write_safetensors(tmp_path / "new.safetensors", {"w": np.zeros(3)})
    assert os.listdir(tmp_path) == []


def test_successful_save_replaces_the_old_file(tmp_path):
    path, _ = _good_file(tmp_path)
    write_safetensors(path, {"v": np.full(2, 7, np.int32)})
    loaded, _ = read_safetensors(path)
    assert list(loaded) == ["v"] and loaded["v"].tolist() == [7, 7]
    assert os.listdir(tmp_path) == ["model.safetensors"]


# --- damaged files ----------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors"):
        read_safetensors(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("cut", [0, 5, 8, 20])
def test_truncated_inside_the_header(tmp_path, cut):
    path, raw = _good_file(tmp_path)
    path.write_bytes(raw[:cut])
    with pytest.raises(ModelFileError, match=r"model\.safetensors: .*(empty|bytes long|truncated)"):
        read_safetensors(path)


def test_truncated_data_says_how_much_is_missing(tmp_path):
    path = write_safetensors(tmp_path / "model.safetensors", {"w": np.zeros(1234, np.uint8)})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 234])
    with pytest.raises(ModelFileError) as err:
        read_safetensors(path)
    assert str(err.value) == (f"{path}: truncated: header says 1,234 bytes of data but only "
                              "1,000 are present.")


def test_trailing_garbage(tmp_path):
    path, raw = _good_file(tmp_path)
    path.write_bytes(raw + b"junk")
    with pytest.raises(ModelFileError, match="4 bytes of trailing garbage"):
        read_safetensors(path)


def test_header_that_is_not_utf8(tmp_path):
    path = tmp_path / "bad.safetensors"
    raw = b'{"a\xff": 1}' + b" " * 6
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    with pytest.raises(ModelFileError, match=r"bad\.safetensors: corrupted: .*not valid UTF-8"):
        read_safetensors(path)


@pytest.mark.parametrize("text", [b'{"a": ', b"{not json}", b'{"a": 1, "a": 2}'])
def test_header_that_is_not_json(tmp_path, text):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_safetensors(path)


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0" * 2,
         "dtype 'BF16', which chainrule cannot read"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8,
         r"shape \(3,\) of F32 needs 12 bytes but data_offsets \[0, 8\] span 8"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4,
         "shape must be a list of non-negative integers"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4,
         "data_offsets must be"),
        ({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "exactly dtype, shape and data_off"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12,
         "tensors 'a' and 'b' overlap"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12,
         "4 bytes between 'a' and 'b' belong to no tensor"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8,
         "4 bytes before 'a' belong to no tensor"),
        ({"a": {"dtype": "U8", "shape": [10], "data_offsets": [0, 10]}}, b"\0" * 4,
         "truncated: header says 10 bytes of data but only 4 are present"),
        ({"__metadata__": {"k": 1}}, b"", "__metadata__ must map strings to strings"),
        ({"w": [1, 2]}, b"", "tensor 'w': expected an object"),
    ],
)
def test_corrupted_headers(tmp_path, header, data, message):
    path = _craft(tmp_path / "c.safetensors", header, data)
    with pytest.raises(ModelFileError, match=message) as err:
        read_safetensors(path)
    assert str(err.value).startswith(f"{path}: ")


def test_an_empty_tensor_file_is_valid(tmp_path):
    path = _craft(tmp_path / "e.safetensors", {})
    assert read_safetensors(path) == ({}, {})


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "a PNG image"),
        (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.", "a Python pickle"),
        (b"hello, this is a plain text file\n", "text"),
        (b"\x00" * 7 + b"\x01" + b"\xfe" * 20, "binary data"),
    ],
)
def test_foreign_files_are_named_as_such(tmp_path, content, kind):
    path = tmp_path / "thing.bin"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=rf"thing\.bin: not a safetensors file: .*{kind}"):
        read_safetensors(path)


def test_a_zip_checkpoint_is_foreign(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02.")
    with pytest.raises(ModelFileError, match=r"not a safetensors file: .*ZIP archive"):
        read_safetensors(path)


def test_a_tiny_file_is_not_safetensors(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"abc")
    with pytest.raises(ModelFileError, match=r"tiny: not a safetensors file: it is only 3 bytes"):
        read_safetensors(path)


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_a_valid_file_larger_than_memory_is_refused_with_its_size(tmp_path):
    # A well-formed file holding one float32 tensor of 1 TiB (sparse on disk): more than any
    # test machine's memory, so the allocation fails and the message says what it needs.
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**18, 2**20],
                               "data_offsets": [0, 2**40]}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        try:
            fh.truncate(8 + len(header) + 2**40)
        except OSError:
            pytest.skip("this file system cannot hold a sparse 1 TiB file")
    with pytest.raises(ModelFileError) as err:
        read_safetensors(path)
    message = str(err.value)
    assert "too large for this machine's memory" in message
    assert "tensor 'w' of shape (262144, 1048576) needs 1,099,511,627,776 bytes" in message
