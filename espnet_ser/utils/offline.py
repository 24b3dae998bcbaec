"""Keep ESPnet imports quiet on machines without network access.

ESPnet's English g2p dependency asks NLTK to download its data when it is imported. With
no network that prints a multi-line error into every log although nothing needs the data
(this toolkit never uses g2p). :func:`quiet_nltk_downloads` makes those attempts silent;
call it before importing ``espnet2`` modules that pull in the tokenizers.
"""

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
