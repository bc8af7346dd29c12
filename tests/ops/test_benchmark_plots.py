"""The plots of the latest load report are committed next to the README (issue 12, item 15)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import report

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_update_readme_copies_and_shows_the_plots(tmp_path: Path) -> None:
    run = tmp_path / "results" / "load-1"
    run.mkdir(parents=True)
    for name in ("latency-cdf.png", "scaling.png"):
        (run / name).write_bytes(PNG)
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "load-old.png").write_bytes(PNG)  # a previous run's: replaced
    markdown = "# Load benchmark\n\nnumbers\n\nPlots: ![latency-cdf](latency-cdf.png)\n"
    for _ in range(2):  # idempotent
        report.update_readme(readme, markdown, plots_from=run)
    text = readme.read_text()
    assert "![latency-cdf](plots/load-latency-cdf.png)" in text
    assert "![scaling](plots/load-scaling.png)" in text
    assert "Plots: " not in text and text.count(report.README_BEGIN) == 1
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "load-latency-cdf.png", "load-scaling.png"
    ]
    assert (tmp_path / "plots" / "load-scaling.png").read_bytes() == PNG
