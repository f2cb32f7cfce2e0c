"""Compare two emulator event logs (`netsem emulate --event-log`) decision by decision.

    .venv/bin/python tools/emulator_log_diff.py run1.jsonl run2.jsonl [--times] [--limit 20]

Prints each log's fate counts per link, then every record where the two decided differently
(loss cause, queue full, corrupted bit, duplicate, reorder, departure order, random stream
positions; with --times also the times), at most --limit of them, and how many there are.
Exit status 0 when the logs agree, 1 when they differ, 2 when a file is not an event log.
A socket run and its offline twin agree on every random decision; where their timing
differs (queue drops, slots) the diff shows exactly which packets it touched.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.eventlog import EventLogError, diff_event_logs, read_event_log


def fate_counts(records: list[dict]) -> Counter:
    counts: Counter = Counter()
    for record in records:
        if record["event"] == "in":
            counts[(record["link"], f"in: {record.get('cause') or 'queued'}")] += 1
        else:
            counts[(record["link"], f"out: {'dropped: ' + record['cause'] if 'cause' in record else 'sent'}")] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("left")
    parser.add_argument("right")
    parser.add_argument("--times", action="store_true", help="also compare t, send and arrived")
    parser.add_argument("--limit", type=int, default=20, help="differences printed (default 20)")
    args = parser.parse_args()
    try:
        left, right = read_event_log(args.left), read_event_log(args.right)
    except EventLogError as error:
        print(f"emulator_log_diff: {error}", file=sys.stderr)
        return 2
    if left.header != right.header:
        changed = sorted(key for key in left.header.keys() | right.header.keys()
                         if left.header.get(key) != right.header.get(key))
        print(f"headers differ in: {', '.join(changed)}")
    left_counts, right_counts = fate_counts(left.records), fate_counts(right.records)
    for key in sorted(left_counts.keys() | right_counts.keys()):
        marker = "" if left_counts[key] == right_counts[key] else "   <-"
        print(f"{key[0]:>18s}  {key[1]:<40s} {left_counts[key]:>9d} {right_counts[key]:>9d}{marker}")
    differences = diff_event_logs(left, right, times=args.times)
    for difference in differences[:args.limit]:
        print(f"{difference.link} packet {difference.packet} copy {difference.copy} {difference.event}: "
              f"{difference.field} {difference.left!r} != {difference.right!r}")
    print(f"{len(differences)} differences" if differences else "the logs agree")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
