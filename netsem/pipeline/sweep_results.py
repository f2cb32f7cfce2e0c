"""A sweep's results file: CSV, one row per run, appended and flushed as each run finishes, so
an interrupted sweep keeps every row it wrote and a restarted one skips the keys it finds.
When a sweep stops, the file is rewritten in grid order: the same grid gives the same file
whatever the number of workers and the order in which runs finished.

CSV rather than Parquet: a row is a line that can be appended and flushed on its own (a
Parquet file is written whole or as row groups, so streaming and resuming would need a
folder of parts), the file reads anywhere without pyarrow (a ~40 MB wheel), and a sweep's
results are small (about 1 kB a run).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from netsem.pipeline.sweep_tasks import CONFIG_COLUMNS, OUTCOME_COLUMNS

TEXT_COLUMNS = {"key", "image", "codec", "partition", "netem", "preset", "loss_model", "phy", "jpeg_setting",
                "expect_loss", "transport", "note", "image_size"}
BOOLEAN_COLUMNS = {"interleave", "delivered"}


class ResultsError(Exception):
    """A file that is not a sweep's results (one-line message)."""


class ResultsFile:
    """The rows of `path` so far, and a writer that adds one at a time."""

    def __init__(self, path: Path, version_names: list[str]) -> None:
        self.path = path
        self.columns = [*CONFIG_COLUMNS, *OUTCOME_COLUMNS, *(f"version_{name}" for name in version_names)]
        if path.exists() and path.stat().st_size:
            drop_torn_line(path)
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames is None or "key" not in reader.fieldnames:
                    raise ResultsError(f"{path} is not the results of a netsem sweep (it has no key column): "
                                       "choose another --out")
                if list(reader.fieldnames) != self.columns:
                    raise ResultsError(f"{path} has other columns than this netsem sweep writes (another version "
                                       "made it): choose another --out")
                self.done = {row["key"] for row in reader}
        else:
            self.done = set()
            with path.open("w", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writeheader()
        self._handle = path.open("a", newline="")
        # A worker elsewhere may have a distribution this machine lacks: its version is left out.
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="ignore")

    def append(self, row: dict) -> None:
        self._writer.writerow(row)
        self._handle.flush()  # a killed sweep loses at most the line being written
        self.done.add(row["key"])

    def close(self, order: list[str]) -> None:
        """Rewrite the file with the rows of `order` (keys) first, in that order, then any
        others (earlier grids or versions) by key; atomically, so a crash keeps one of them."""
        self._handle.close()
        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        place = {key: index for index, key in enumerate(order)}
        rows.sort(key=lambda row: (place.get(row["key"], len(place)), row["key"]))
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, self.path)


def drop_torn_line(path: Path) -> None:
    """Cut a last line that a killed sweep left half written (no newline at its end)."""
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    with path.open("r+b") as handle:
        handle.truncate(data.rfind(b"\n") + 1)


def read_results(path: Path) -> list[dict]:
    """The rows of a results file with their types: numbers as floats (inf and nan included),
    on/off columns as booleans, empty cells as None."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "key" not in rows[0]:
        raise ResultsError(f"{path} is not the results of a netsem sweep (it has no key column)")
    for row in rows:
        for column, value in row.items():
            if column in TEXT_COLUMNS or column.startswith("version_"):
                continue
            if value == "":
                row[column] = None
            elif column in BOOLEAN_COLUMNS:
                row[column] = value == "True"
            else:
                row[column] = float(value)
    return rows
