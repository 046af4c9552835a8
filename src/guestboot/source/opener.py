"""How an image format asks for another file (a qcow2 backing file, a VMDK extent, a VHD
parent): through one narrow interface, so that the caller decides.

The library never opens a host path by name. A format that needs another file calls
``opener.open_related(requested_name, by)``; a parent process may open such files before
it drops privileges and hand over their sources, and a policy may refuse them. The
default opener refuses every request, naming the file the image asked for.
"""

from __future__ import annotations

from ..errors import Unsupported
from .base import ByteSource


class Opener:
    """The default: no image may make us open another file."""

    __slots__ = ()

    def open_related(self, requested_name: str, by: str) -> ByteSource:
        """A source for the file ``requested_name`` that the image ``by`` refers to."""
        raise Unsupported(
            f"the image asks for another file, {requested_name!r}; opening files an image names is not"
            " allowed here",
            where=by,
        )


REFUSE = Opener()
