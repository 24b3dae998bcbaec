"""Call :func:`quiet_nltk_downloads` before ESPnet imports: offline, the NLTK downloads of
its g2p dependency print errors into every log."""

import io

_done = False


def quiet_nltk_downloads() -> None:
    global _done
    if _done:
        return
    _done = True
    try:
        import nltk
    except ImportError:
        return
    original = nltk.download

    def download(*args, **kwargs):
        kwargs.setdefault("quiet", True)
        kwargs.setdefault("print_error_to", io.StringIO())
        return original(*args, **kwargs)

    nltk.download = download
