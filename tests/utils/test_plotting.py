"""espnet_ser.utils.plotting.save_figure: atomic PNG (or by extension) saves."""

import os

import pytest

from espnet_ser.utils.plotting import save_figure


def figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    return fig


def test_png_mode_and_no_temp_file(tmp_path):
    out = tmp_path / "sub" / "f.png"
    save_figure(figure(), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in out.parent.iterdir()] == ["f.png"]


def test_format_from_extension(tmp_path):
    out = tmp_path / "f.pdf"
    save_figure(figure(), out, format=None, dpi=None)
    assert out.read_bytes()[:5] == b"%PDF-"
    assert [p.name for p in tmp_path.iterdir()] == ["f.pdf"]


def test_failed_save_leaves_nothing(tmp_path):
    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_figure(Broken(), tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []
