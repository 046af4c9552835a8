"""GRUB's error numbers (include/grub/err.h) that the interpreter reports in ``$?``."""

from __future__ import annotations

NONE = 0
TEST_FAILURE = 1
BAD_FILE_TYPE = 4
FILE_NOT_FOUND = 5
FILE_READ_ERROR = 6
BAD_FILENAME = 7
UNKNOWN_FS = 8
BAD_FS = 9
BAD_NUMBER = 10
OUT_OF_RANGE = 11
UNKNOWN_DEVICE = 12
UNKNOWN_COMMAND = 16
INVALID_COMMAND = 17
BAD_ARGUMENT = 18
BAD_OS = 21
NO_KERNEL = 22
NOT_IMPLEMENTED_YET = 24
MENU = 27
ACCESS_DENIED = 30
RECURSION_DEPTH = 48  # the last member of grub_err_t


class GrubError(Exception):
    """A GRUB command failed: ``code`` is what ``$?`` becomes, ``message`` what GRUB
    prints (``error: <message>.``); ``silent`` for test failures, which GRUB never prints."""

    def __init__(self, code: int, message: str, *, silent: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.silent = silent
