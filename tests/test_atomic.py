import os

import pytest

from stm2pe_core.atomic import atomic_write


def test_destination_appears_only_on_success_with_umask_mode(tmp_path):
    dst = tmp_path / "out.json"
    old = os.umask(0o022)
    try:
        with atomic_write(dst) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".json" and not dst.exists()
            tmp.write_text("new")
    finally:
        os.umask(old)
    assert dst.read_text() == "new"
    assert (dst.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    dst = tmp_path / "out.npz"
    dst.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(dst) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert dst.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
