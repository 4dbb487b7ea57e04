from pathlib import Path

from ftp_pose.viz.diagram import save_pipeline_diagram


def test_pipeline_diagram_is_a_png(tmp_path: Path) -> None:
    out = save_pipeline_diagram(tmp_path / "pipeline.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000  # a real drawing, not an empty canvas
    assert not list(tmp_path.glob("*.tmp*")), "temp file left behind"
