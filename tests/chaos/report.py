"""Print the campaigns' figures (the JSON lines CHAOS_REPORT collected) as the README's table."""

import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
print("| campaign | trials | failures | what is guaranteed |")
print("|---|---:|---:|---|")
for row in rows:
    print(f"| {row['campaign']} | {row['trials']} | {row['failures']} | {row['guarantee']} |")
