"""The HTML gallery, checked in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fiqa_stream.archive.analysis import VideoJob, analyse_video, fingerprint
from fiqa_stream.archive.database import ArchiveIndex
from fiqa_stream.archive.report import write_report
from fiqa_stream.config import load_config
from fiqa_stream.models import build_models

if TYPE_CHECKING:
    from conftest import VideoArchive

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@pytest.fixture(scope="module")
def index(video_archive: VideoArchive, tmp_path_factory: pytest.TempPathFactory) -> ArchiveIndex:
    """An index of the archive's face clips and one bad file, analysed in this process."""
    defaults = {"sources": [{"url": "-"}], "sinks": [{"type": "directory", "path": "-"}]}
    config = load_config(video_archive.config, defaults)
    models = build_models(config.detector, config.scorer, config.device)
    archive = ArchiveIndex(tmp_path_factory.mktemp("gallery"))
    for name in ("lobby.mp4", "gate.mp4", "day2/door.mp4", "zero.mp4"):
        path = video_archive.folder / name
        fp = fingerprint(path)
        archive.upsert_pending(fp, str(path), path.stat().st_size, path.stat().st_mtime_ns)
        job = VideoJob(fp, str(path), path.stat().st_size)
        archive.record(analyse_video(job, config, models, threading.Event(), "test").outcome)
    return archive


def test_report_embeds_every_thumbnail_and_forbids_the_network(index: ArchiveIndex) -> None:
    page = write_report(index).read_text()
    assert page.count("<figure") == page.count('src="data:image/jpeg;base64,') == 4
    assert "default-src 'none'" in page
    assert "empty file (0 bytes)" in page


def test_report_renders_and_sorts_by_quality_in_chromium(
    index: ArchiveIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test.sh installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    # Both paths are given, so Selenium Manager never runs; offline in case it did.
    monkeypatch.setenv("SE_OFFLINE", "true")
    page = write_report(index, tmp_path / "report.html", per_video=10)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(page.as_uri())
        images = driver.find_elements(By.CSS_SELECTOR, ".shot img")
        assert len(images) == 4
        assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) > 0
                   for i in images)

        def order(attribute: str) -> list[float]:
            # Within each video's group, in the order the page shows them.
            return [
                [float(s.get_attribute(f"data-{attribute}")) for s in group.find_elements(By.CSS_SELECTOR, ".shot")]
                for group in driver.find_elements(By.CSS_SELECTOR, ".shots")
            ]

        gate = next(g for g in order("time") if len(g) == 2)
        assert gate == sorted(gate)  # time order first
        button = driver.find_element(By.ID, "sort-quality")
        button.click()
        assert all(group == sorted(group, reverse=True) for group in order("quality"))
        assert button.get_attribute("aria-pressed") == "true" and "↓" in button.text
        button.click()
        assert all(group == sorted(group) for group in order("quality"))
        assert "↑" in button.text
        driver.find_element(By.ID, "sort-time").click()
        assert all(group == sorted(group) for group in order("time"))
        qualities = driver.execute_script(
            "return Array.from(document.querySelectorAll('.quality')).map(e => e.textContent)")
        assert all(0 <= float(q) <= 1 for q in qualities)
        driver.find_element(By.ID, "sort-quality").click()
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "report-gallery.png"))
    finally:
        driver.quit()
