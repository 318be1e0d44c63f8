"""Loaded by the workers of a test run (PYTHONPATH): every video writer hits a full disk mid-file."""

import errno

import imageio.v2 as imageio

_real = imageio.get_writer


def _full_disk_writer(path, *args, **kwargs):
    class Writer:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def append_data(self, frame):
            with open(path, "ab") as f:
                f.write(b"\0" * 1024)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    return Writer()


imageio.get_writer = _full_disk_writer
