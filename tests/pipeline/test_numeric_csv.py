"""The C numeric-CSV parser gives polars' float64 values bit for bit, and hands every file
it does not fully understand back to polars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from comodo.pipeline import numeric_csv
from comodo.pipeline.datasets.common import EGO4D_COLUMNS, _read_with_polars, read_imu_csv

NULLS = ["", "nan", "NaN", "NAN"]


def test_extension_is_built() -> None:
    assert numeric_csv.available(), ("comodo.pipeline._fastcsv is missing: reinstall with a C "
                                     "compiler (`pip install -e .`)")


def _polars(path: Path, names: list[str]) -> np.ndarray:
    return pl.read_csv(path, schema_overrides=dict.fromkeys(names, pl.Float64),
                       null_values=NULLS).to_numpy()


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)  # NaN equals NaN here
    assert np.array_equal(np.signbit(a), np.signbit(b))  # -0.0 stays -0.0


def _number_texts(rng: np.random.Generator, n: int) -> list[str]:
    """Decimal numbers in the spellings exporters use, fast path and slow path alike."""
    values = rng.normal(0, 1, n) * 10.0 ** rng.integers(-8, 12, n)
    out = []
    for k, v in enumerate(values):
        style = k % 12
        if style == 0:
            out.append(f"{v:.5f}")
        elif style == 1:
            out.append(f"{v:.0f}")
        elif style == 2:
            out.append(f"{v:.17g}")  # repr-like, long mantissas
        elif style == 3:
            out.append(f"{v:e}")
        elif style == 4:
            out.append(f"{v:.3E}")
        elif style == 5:
            out.append(f"{abs(v):.7f}".lstrip("0") or "0")  # ".123"
        elif style == 6:
            out.append(f"+{abs(v):.2f}")
        elif style == 7:
            out.append(f"{int(rng.integers(10**12, 10**13))}.{int(rng.integers(0, 1000)):03d}")  # epoch ms
        elif style == 8:
            out.append(f"{v:.25f}")  # more than 19 significant digits
        elif style == 9:
            out.append(rng.choice(["-0.0", "0", "000.000", "007.50", "1.", "-0", "12345678.9"]))
        elif style == 10:
            out.append(f"{v:.2e}".replace("e+0", "e").replace("e-0", "e-"))  # "1.23e5", "4.5e-7"
        else:
            out.append(repr(float(np.float32(v))))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_random_numbers_match_polars_bit_for_bit(tmp_path: Path, seed: int, newline: str) -> None:
    rng = np.random.default_rng(seed)
    names = ["t", "a", "b", "c"]
    cells = np.array(_number_texts(rng, 4 * 3000), dtype=object).reshape(3000, 4)
    cells[rng.random(cells.shape) < 0.01] = ""  # missing
    cells[rng.random(cells.shape) < 0.005] = "nan"
    lines = [",".join(names)] + [",".join(row) for row in cells]
    path = tmp_path / "x.csv"
    path.write_text(newline.join(lines) + (newline if seed % 2 else ""), encoding="utf-8")
    got = numeric_csv.read(path, names)
    assert got is not None
    _same(got, _polars(path, names))


@pytest.mark.parametrize("n_cols", [7, 24])  # rows of ~60 bytes, and of over 128
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_plain_export_rows_match_polars_bit_for_bit(tmp_path: Path, n_cols: int, newline: str) -> None:
    """Rows of short plain fields only, as IMU exports write them: the whole-row fast paths
    (every separator of a row found first, then each field 16 bytes at a time)."""
    rng = np.random.default_rng(n_cols)
    values = rng.normal(0, 1, (2000, n_cols)) * 10.0 ** rng.integers(-3, 7, (2000, n_cols))
    decimals = rng.integers(0, 7, (2000, n_cols))
    cells = [[f"{v:.{d}f}" for v, d in zip(row, ds)] for row, ds in zip(values, decimals)]
    cells[5][2], cells[6][3], cells[7][1] = "-0.0", "+1.5", "-000.25"
    names = [f"c{i}" for i in range(n_cols)]
    path = tmp_path / "plain.csv"
    path.write_text(newline.join([",".join(names)] + [",".join(r) for r in cells]) + newline)
    got = numeric_csv.read(path, names)
    assert got is not None
    _same(got, _polars(path, names))


def test_columns_are_picked_by_name_in_the_order_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("b,extra,a\n1.5,9,2.5\n-3,8,4e2\n", encoding="utf-8")
    _same(numeric_csv.read(path, ["a", "b"]), np.array([[2.5, 1.5], [400.0, -3.0]]))
    _same(numeric_csv.read(path, ["b", "extra"]), np.array([[1.5, 9.0], [-3.0, 8.0]]))


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n", encoding="utf-8")
    assert numeric_csv.read(path, ["a", "b"]).shape == (0, 2)


@pytest.mark.parametrize("body", [
    'a,b\n"1.5",2\n',  # quoted field
    "a,b\n1.5,abc\n",  # text
    "a,b\n1.5,inf\n",  # not a plain number
    "a,b\n1,2\n\n3,4\n",  # blank line inside
    "a,b\n1,2,3\n",  # too many fields
    "a,b\n1\n",  # too few fields
    "a,b\n1, 2\n",  # a space before a number
    "a,b\n1e,2\n",  # an exponent without digits
    "a,b\n-,2\n",  # a lone sign
    "\ufeffa,b\n1,2\n",  # byte-order mark: the header lacks "a"
    "x,y\n1,2\n",  # other columns
    "a,a\n1,2\n",  # duplicate names
    "a,b",  # no line end at all
])
def test_unusual_files_go_back_to_polars(tmp_path: Path, body: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(body.encode("utf-8"))
    assert numeric_csv.read(path, ["a", "b"]) is None


def test_trailing_blank_lines_end_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4\n\n\n", encoding="utf-8")
    _same(numeric_csv.read(path, ["a", "b"]), np.array([[1.0, 2.0], [3.0, 4.0]]))


def test_imu_csv_reads_the_same_either_way(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(500) * 10.0 + 1.6e12
    values = rng.normal(0, 3, (500, 6))
    frame = pl.DataFrame({"canonical_timestamp_ms": t}
                         | {c: values[:, k] for k, c in enumerate(EGO4D_COLUMNS[1:])})
    path = tmp_path / "rec with space é.csv"
    frame.write_csv(path, float_precision=6)
    fast = read_imu_csv(path)
    slow = _read_with_polars(path, EGO4D_COLUMNS)
    _same(fast.values, slow[:, 1:])
    _same(fast.t_s, slow[:, 0] * 1e-3)


def test_a_file_with_text_still_reads_through_polars(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(",".join(EGO4D_COLUMNS) + "\n0,1,2,3,4,5,6\n10,1,2,3,oops,5,6\n", encoding="utf-8")
    imu = read_imu_csv(path)  # as before: a non-number is missing, and cleaning drops the row
    assert imu.values.shape == (2, 6) and np.isnan(imu.values[1, 3])


def test_rows_parsed_by_column_are_the_transpose_of_rows_by_row() -> None:
    parse = numeric_csv._fastcsv.parse  # built at install (test_extension_is_built)
    rng = np.random.default_rng(5)
    cells = np.array(_number_texts(rng, 3 * 500), dtype=object).reshape(500, 3)
    body = ("\n".join(",".join(row) for row in cells) + "\n").encode()
    by_row, by_column = np.full((501, 3), 7.0), np.full((3, 501), 7.0)
    assert parse(body, 0, 3, by_row) == (500, 0, 500)
    assert parse(body, 0, 3, by_column, True) == (500, 0, 500)
    _same(by_column.T, by_row)  # the spare row untouched in both


def test_the_reader_gives_each_column_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("t,a,b\n" + "".join(f"{i},{i * 0.5},{-i}\n" for i in range(100)), encoding="utf-8")
    got = numeric_csv.read(path, ["t", "b"])
    assert got is not None and got.flags.f_contiguous and got.shape == (100, 2)
    np.testing.assert_array_equal(got[:, 1], -np.arange(100.0))
