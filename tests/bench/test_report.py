"""bench/report.py renders the latest results into bench/README.md, between its markers, and
nowhere else: `make bench` leaves the root README unchanged (issue 24's acceptance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]
BLOCK = f"{report.START}\n{report.render()}\n{report.END}"


def _copy_of_the_repository_readmes(root: Path, block: str) -> tuple[bytes, str, str]:
    """The root README as it is, and bench/README.md with `block` between its markers."""
    (root / "bench").mkdir()
    root_readme = (ROOT / "README.md").read_bytes()
    (root / "README.md").write_bytes(root_readme)
    text = (ROOT / "bench" / "README.md").read_text()
    head, tail = text.split(report.START, 1)[0], text.split(report.END, 1)[1]
    (root / "bench" / "README.md").write_text(f"{head}{block}{tail}")
    return root_readme, head, tail


def test_rendering_writes_the_block_into_bench_readme_and_touches_nothing_else(tmp_path: Path) -> None:
    root_readme, head, tail = _copy_of_the_repository_readmes(
        tmp_path, f"{report.START}\nan older run's figures\n{report.END}")
    written = report.update_bench_readme(tmp_path)
    assert written == tmp_path / "bench" / "README.md"
    assert written.read_text() == f"{head}{BLOCK}{tail}"  # the block replaced, the method text kept
    assert (tmp_path / "README.md").read_bytes() == root_readme
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "README.md", "bench", "bench/README.md"]


def test_rendering_twice_changes_nothing(tmp_path: Path) -> None:
    _copy_of_the_repository_readmes(tmp_path, BLOCK)
    before = (tmp_path / "bench" / "README.md").read_bytes()
    report.update_bench_readme(tmp_path)
    assert (tmp_path / "bench" / "README.md").read_bytes() == before


def test_a_bench_readme_without_markers_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "README.md").write_text("# Benchmarks\n")
    with pytest.raises(SystemExit, match="no benchmark markers"):
        report.update_bench_readme(tmp_path)
    assert (tmp_path / "bench" / "README.md").read_text() == "# Benchmarks\n"


def test_the_root_readme_has_no_benchmark_block_and_links_the_results() -> None:
    text = (ROOT / "README.md").read_text()
    assert report.START not in text and report.END not in text
    assert "bench/README.md" in text


def test_the_committed_bench_readme_shows_the_committed_results() -> None:
    assert BLOCK in (ROOT / "bench" / "README.md").read_text()
