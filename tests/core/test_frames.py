"""``core/frames.py``: a DataFrame, Series or array as Markdown a model can read (SPEC 16)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from yagpt_magic.core.frames import describe, kind, text_tokens

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

COLUMNS = ["order_id", "customer", "price", "quantity", "discount", "shipped", "order_date",
           "region", "status", "rating", "weight_kg", "city", "zip", "channel", "returned",
           "margin", "tax", "currency", "coupon", "notes", "sku", "brand", "category", "color",
           "size", "stock", "supplier", "lead_days", "score", "updated_at"]


def orders(rows: int = 2000) -> object:
    """A 2,000-row frame of 30 columns of six dtypes, some with nulls."""
    rng = np.random.default_rng(7)
    data = {}
    for i, name in enumerate(COLUMNS):
        which = i % 6
        if which == 0:
            data[name] = rng.integers(0, 10_000, rows)
        elif which == 1:
            values = rng.normal(100, 20, rows)
            values[rng.random(rows) < 0.05] = np.nan
            data[name] = values
        elif which == 2:
            text = np.array([f"{name}-{n}" for n in rng.integers(0, 500, rows)], dtype=object)
            text[rng.random(rows) < 0.02] = None
            data[name] = text
        elif which == 3:
            data[name] = rng.random(rows) < 0.5
        elif which == 4:
            data[name] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
                rng.integers(0, 365, rows), unit="D")
        else:
            data[name] = pd.Categorical(rng.choice(["north", "south", "east", "west"], rows))
    return pd.DataFrame(data)


def schema_lines(text: str) -> dict[str, tuple[str, str]]:
    """The column table of a description: name -> (dtype, nulls)."""
    table = text.split("| column | dtype | nulls |\n", 1)[1].split("\n\n", 1)[0]
    found = re.findall(r"^\| (\S+) \| (\S+) \| ([\d,]+) \|$", table, re.M)
    return {name: (dtype, nulls) for name, dtype, nulls in found}


def test_a_wide_frame_names_every_column_with_its_dtype_and_nulls_within_the_budget() -> None:
    df = orders()
    text = describe(df, 2000)
    assert text is not None
    assert text.startswith("pandas DataFrame: 2,000 rows × 30 columns.")
    listed = schema_lines(text)
    assert list(listed) == COLUMNS
    for name in COLUMNS:
        assert listed[name] == (str(df[name].dtype), f"{int(df[name].isna().sum()):,}")
    assert any(int(nulls) > 0 for _, nulls in listed.values())
    assert text_tokens(text) <= 2000
    # Sample rows, and a line that says what was left out of them.
    assert "| 0 | " in text and "| 1 | " in text
    assert re.search(r"^Left out: 1,99\d rows\.$", text, re.M)


def test_the_description_is_far_shorter_than_str_and_says_more_than_its_default_print() -> None:
    df = orders()
    text = describe(df, 2000)
    assert text is not None
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", None):
        whole = str(df)  # what --vars sent for a user who shows frames whole
    assert len(text) * 50 < len(whole)
    # With pandas' default print, str() leaves columns out behind "...".
    default = str(df)
    assert "..." in default
    assert [c for c in COLUMNS if c not in default]


def test_a_frame_too_wide_for_the_budget_says_which_columns_it_did_not_list() -> None:
    df = pd.DataFrame(np.zeros((10, 400)), columns=[f"feature_{i:03d}" for i in range(400)])
    text = describe(df, 2000)
    assert text is not None and text_tokens(text) <= 2000
    listed = schema_lines(text)
    assert 0 < len(listed) < 400 and list(listed)[0] == "feature_000"
    missing = 400 - len(listed)
    first = f"feature_{len(listed):03d}"
    assert f"Left out: {missing} columns not listed ({first} to feature_399)" in text


def test_a_small_frame_is_shown_whole_and_leaves_nothing_out() -> None:
    df = pd.DataFrame({"name": ["Ada", None], "year": [1815, 1906]})
    text = describe(df, 2000)
    assert text is not None
    assert schema_lines(text) == {"name": (str(df["name"].dtype), "1"), "year": ("int64", "0")}
    assert "All 2 rows:" in text and "| 0 | Ada | 1815 |" in text
    assert "Left out" not in text


def test_cells_that_would_break_the_table_are_escaped_and_cut() -> None:
    df = pd.DataFrame({"a|b": ["x | y\nz", "w" * 200]})
    text = describe(df, 2000)
    assert text is not None
    assert "| a\\|b | " in text
    assert "| 0 | x \\| y z |" in text
    assert "w" * 200 not in text and "w" * 23 + "…" in text


@pytest.mark.parametrize("budget", [150, 300, 600, 1000, 2000, 5000])
def test_every_description_fits_its_budget(budget: int) -> None:
    for value in (orders(50), orders(50)["price"], np.arange(10_000).reshape(100, 100),
                  np.linspace(0, 1, 500)):
        text = describe(value, budget)
        assert text is not None
        assert text_tokens(text) <= budget, (budget, text)


def test_a_series_gives_its_name_dtype_nulls_and_first_values() -> None:
    series = pd.Series([1.5, None, 3.25] * 100, name="price")
    text = describe(series, 2000)
    assert text is not None
    assert text.startswith("pandas Series (named 'price'): 300 values, dtype float64, 100 nulls.")
    assert "| 0 | 1.5 |" in text and "| 1 | nan |" in text
    assert "Left out: 290 values." in text


def test_an_array_gives_its_shape_dtype_nans_and_first_rows() -> None:
    array = np.arange(2000 * 30, dtype=float).reshape(2000, 30)
    array[3, 4] = np.nan
    text = describe(array, 2000)
    assert text is not None and text_tokens(text) <= 2000
    assert text.startswith("numpy array: shape (2000, 30), dtype float64, 1 null")
    assert "| 0 | 0.0 | 1.0 | 2.0 |" in text
    assert re.search(r"^Left out: 1,99\d rows", text, re.M)
    vector = describe(np.array(["a", "b"]), 2000)
    assert vector is not None and "All 2 values:" in vector and "| 1 | b |" in vector


def test_the_variable_name_opens_the_description() -> None:
    text = describe(pd.DataFrame({"a": [1]}), 2000, name="sales")
    assert text is not None and text.startswith("pandas DataFrame `sales`: 1 row × 1 column.")
    series = describe(pd.Series([1.0], name="price"), 2000, name="prices")
    assert series is not None and series.startswith("pandas Series `prices` (named 'price'): ")


def test_other_values_are_left_to_str() -> None:
    for value in (42, "text", [1, 2], {"a": 1}, pd.DataFrame, np.float64(1.5)):
        assert kind(value) is None and describe(value, 2000) is None


def test_describing_plain_values_imports_neither_pandas_nor_numpy() -> None:
    code = ("import sys\n"
            "from yagpt_magic.core.frames import describe\n"
            "assert describe([1, 2], 2000) is None and describe('x', 2000) is None\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
