"""Saving matplotlib figures."""

import os
import tempfile
from pathlib import Path
from typing import Optional, Union


def save_figure(fig, path: Union[str, Path], format: Optional[str] = "png",
                dpi: Optional[float] = 100) -> None:
    """Save ``fig`` to ``path`` atomically (temporary file + rename); creates the parent.

    ``format=None`` takes the format from the extension of ``path`` and ``dpi=None``
    matplotlib's ``savefig.dpi``, as ``fig.savefig(path)`` does.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.",
                               suffix=path.suffix if format is None else f".{format}")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        fig.savefig(tmp, format=format, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
