#!/usr/bin/env bash
# The wider training set of issue #16: the 20 shared photographs (../shared/data/photos) plus 18
# photographs that Debian ships in wallpaper packages, resized as the shared ones were (longest side
# 1280 px, Lanczos, JPEG quality 95). Needs apt-get (the Debian archive); writes $OUT (default
# runs/photos-wide) with a CREDITS.txt. Illustrations in those packages are left out by name.
set -euo pipefail
OUT=${OUT:-runs/photos-wide}
SHARED=${SHARED:-../shared/data/photos}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
(cd "$WORK" && apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers \
    && for f in *.deb; do dpkg -x "$f" x; done)
cp "$SHARED"/*.jpg "$OUT"/
LOMIRI=(aitzgorri_by_Aitzol_Berasategi analogpattern_by_Peter_Nerlich Bridge_by_Sander_Klootwijk
        Dragonfly_by_Bolly free_by_Peter_Nerlich friends_by_Aitzol_Berasategi greentock_by_Peter_Nerlich
        life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi Picture_0B_by_freespace
        Picture_1A_by_freespace seeding_by_Clements_Engelhardt sunset_by_Aitzol_Berasategi
        Wine_by_Jakkub_Mede Kleiber_by_Lukas_Baubkus)
PLASMA=(EveningGlow FallenLeaf Path)
SRC=()
for n in "${LOMIRI[@]}"; do SRC+=("$WORK/x/usr/share/backgrounds/$n.jpg=lomiri-$n.jpg"); done
for n in "${PLASMA[@]}"; do
    big=$(ls -S "$WORK/x/usr/share/wallpapers/$n/contents/images/" | head -1)
    SRC+=("$WORK/x/usr/share/wallpapers/$n/contents/images/$big=plasma-$n.jpg")
done
.venv/bin/python - "$OUT" "${SRC[@]}" <<'PY'
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
for pair in sys.argv[2:]:
    src, name = pair.split("=")
    with Image.open(src) as im:
        im = im.convert("RGB")
        im.thumbnail((1280, 1280), Image.LANCZOS)
        im.save(out / name, quality=95)
PY
cat > "$OUT/CREDITS.txt" <<'TXT'
The shared photographs (mate-*, plasma-*): see ../shared/data/photos/CREDITS.txt.
lomiri-*.jpg: Debian packages lomiri-wallpapers-16.04 and lomiri-wallpapers-20.04 (20.04.0-2), folder
  usr/share/backgrounds/; each file names its photographer; licences CC-BY-4.0, CC-BY-SA-4.0 or CC0-1.0
  per file, as listed in the packages' debian/copyright (Kleiber: CC-BY-SA-3.0).
plasma-*.jpg here: Debian package plasma-workspace-wallpapers (4:5.27.5-2), largest size: EveningGlow by
  Ian Hex, FallenLeaf by Martin Klapetek, Path by Risto Saukonpää; debian/copyright: GPL-2+, each
  wallpaper's metadata.json: LGPLv3.
All downscaled to a longest side of 1280 px (Lanczos), JPEG quality 95.
TXT
ls "$OUT"/*.jpg | wc -l
