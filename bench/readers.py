"""What the text guard costs: CSV, JSON Lines and JSON arrays read end to end, and the scan alone.

    .venv/bin/python bench/readers.py             # 1,000,000 CSV rows, 500,000 JSON records
    .venv/bin/python bench/readers.py --rows 100000

Reports seconds and MB/s for each format read through `open_sources` (decode with
one encoding, JSON depth and key checks, Arrow or ijson parse), and for
`guard.JsonShape` scanning the JSON Lines bytes on its own, so a change to the
guard can be weighed against the parse it protects.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from headwater.storage.readers import open_sources
from headwater.storage.readers.guard import JsonShape


def write_files(folder: Path, rows: int) -> list[Path]:
    csv_path, lines_path, array_path = folder / "t.csv", folder / "t.jsonl", folder / "t.json"
    with csv_path.open("w") as handle:
        handle.write("id,name,price,label\n")
        handle.writelines(f"{i},item {i},{i / 3:.3f},{i % 3}\n" for i in range(rows))
    records = [
        json.dumps({"id": i, "name": f'item "{i}" {{x}}', "price": i / 3, "label": i % 3})
        for i in range(rows // 2)
    ]
    lines_path.write_text("\n".join(records) + "\n")
    array_path.write_text("[" + ",\n".join(records) + "]")
    return [csv_path, lines_path, array_path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), args.rows)
        for path in paths:
            size = path.stat().st_size / 1e6
            started = time.perf_counter()
            (source,) = open_sources(path, chunk_rows=16384)
            rows = sum(b.num_rows for b in source.read())
            took = time.perf_counter() - started
            print(
                f"{path.name:8} {rows:>9,} rows {size:7.1f} MB {took:6.2f} s "
                f"{size / took:6.1f} MB/s"
            )
        data = paths[1].read_bytes()
        shape = JsonShape(max_depth=64, max_fields=10_000, array=False)
        started = time.perf_counter()
        shape.feed(data)
        took = time.perf_counter() - started
        print(
            f"scan     {shape.records:>9,} recs {len(data) / 1e6:7.1f} MB {took:6.2f} s "
            f"{len(data) / 1e6 / took:6.1f} MB/s (JsonShape alone)"
        )


if __name__ == "__main__":
    main()
