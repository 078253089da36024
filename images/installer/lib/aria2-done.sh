#!/bin/sh
# aria2c's --on-bt-download-complete hook: (GID, number of files, first file). It runs once every piece has
# verified and BEFORE seeding starts; the marker is written atomically so the poller never reads half of it.
d=$(dirname "$3")
echo "$3" > "$d/aria2.done.tmp" && mv "$d/aria2.done.tmp" "$d/aria2.done"
