"""`netsem report` in a real headless browser (Debian's chromium): every section is there, every
embedded picture decodes at its size, and the page renders.

CI needs the browser: apt-get install -y chromium (skipped cleanly without it)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from netsem.pipeline.report import versions
from netsem.pipeline.report_html import report
from netsem.pipeline.sweep import SweepGrid, image_digest
from netsem.pipeline.sweep_results import ResultsFile
from netsem.pipeline.sweep_tasks import matched_quality, run_task

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary: apt-get install -y chromium")

# Added to a copy of the page only: once everything has loaded, the browser writes the size it
# decoded each picture at into the DOM that --dump-dom prints.
PROBE = """<script>addEventListener("load", () => { document.body.dataset.pictures = JSON.stringify(
  [...document.images].map(image => [image.naturalWidth, image.naturalHeight])); });</script>"""


def browser(profile, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=10000", *arguments],
        capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    image = folder / "tiny.png"
    Image.fromarray(data.astronaut()[::8, ::8]).save(image)  # 64 x 64
    grid = SweepGrid(images=(str(image),), codecs=("raw", "jpeg"), partitions=("channel",), interleave=(True,),
                     netem=("", "loss random 40%", "loss random 100%"), seeds=(0, 1), jpeg_match="raw")
    found = versions()
    results = ResultsFile(folder / "results.csv", list(found))
    keys = []
    for task in grid.tasks():
        quality = matched_quality(task.codec, task.image, task.jpeg_match, task.mtu) if task.jpeg_match else None
        keys.append(task.key(image_digest(task.image), found))
        results.append(run_task(task, keys[-1], quality))
    results.close(keys)
    out = folder / "report.html"
    result = CliRunner().invoke(report, [str(folder / "results.csv"), "--out", str(out), "--at", "40", "--at", "100"])
    assert result.exit_code == 0, result.output
    return out


def test_every_section_and_picture_loads_in_the_browser(page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = browser(tmp_path / "profile", "--dump-dom", probed.as_uri()).stdout
    for heading in ("Quality against configured packet loss", "Every point", "JPEG quality per image",
                    "Reconstructions", "Versions"):
        assert f"<h2>{heading}</h2>" in dom
    assert "mean ± 1 sd over 1 image × 2 seeds" in dom
    assert "nothing delivered" in dom  # at 100 % loss
    assert "mismatch" not in re.sub(r"\.mismatch \{[^}]*\}", "", dom)  # every re-run gave the table's PSNR
    pictures = json.loads(re.search(r'data-pictures="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    # the figure; per point the original, then raw and jpeg with nothing lost and received (not at 100 %)
    assert len(pictures) == 1 + (1 + 4) + (1 + 2)
    assert pictures[0][0] > 1000 and all(size == [64, 64] for size in pictures[1:])


def test_the_page_renders(page, tmp_path):
    shot = tmp_path / "shot.png"
    browser(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 20  # text, figure and pictures, not a blank page
