"""Print the campaigns' figures (the JSON lines CHAOS_REPORT collected) as the table in docs/reliability.md."""

import json
import sys
from pathlib import Path

rows = [json.loads(line) for line in Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()]
print("| campaign | trials | failures | what is guaranteed |")
print("|---|---:|---:|---|")
for row in rows:
    print(f"| {row['campaign']} | {row['trials']} | {row['failures']} | {row['guarantee']} |")
