"""Downloads (resume, checksums, HTTP errors) against a local server, and safe extraction.

The server runs on 127.0.0.1 in a thread and serves bytes the tests make; it can ignore
``Range`` headers or drop the connection halfway through a file. Nothing here touches the
internet.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from liverseg.datasets import download as dl
from liverseg.errors import (
    ChecksumError,
    CorruptFileError,
    DownloadError,
    LiversegError,
    MissingFileError,
    UnsafeArchiveError,
    UnsupportedFormatError,
)

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


# --------------------------------------------------------------------------- local server


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range`` unless told not to; may cut a response short."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if isinstance(body, str):  # a redirect, as S3 and IRCAD's cloud answer
            self.send_response(302)
            self.send_header("Location", body)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body is None:
            self.send_error(404)
            return
        start = 0
        wanted = self.headers.get("Range")
        if wanted and server.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.drops_left > 0:  # send half of it, then hang up
            server.drops_left -= 1
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """``serve(files, honour_range=True, drops=0) -> (base_url, server)``; stopped after the test."""
    servers = []

    def start(files, honour_range=True, drops=0):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.files, server.honour_range, server.drops_left, server.requests = files, honour_range, drops, []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


def _quiet_download(url, dest, **kwargs):
    return dl.download(url, dest, progress=False, chunk_size=16_384, **kwargs)


# --------------------------------------------------------------------------- download


def test_download_checks_sha256_and_md5(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD})
    dest = tmp_path / "sub" / "data.bin"
    assert _quiet_download(f"{base}/data.bin", dest, sha256=SHA256, md5=MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]


def test_existing_file_matching_checksum_is_not_downloaded_again(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD})
    dest = tmp_path / "data.bin"
    _quiet_download(f"{base}/data.bin", dest, sha256=SHA256)
    _quiet_download(f"{base}/data.bin", dest, sha256=SHA256)
    assert len(server.requests) == 1


def test_existing_file_with_wrong_checksum_is_replaced(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD})
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"stale")
    _quiet_download(f"{base}/data.bin", dest, md5=MD5)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_checksum_mismatch_raises_and_leaves_no_file(serve, tmp_path):
    base, _ = serve({"/data.bin": PAYLOAD})
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as caught:
        _quiet_download(f"{base}/data.bin", dest, sha256=wrong)
    message = str(caught.value)
    assert "data.bin" in message and wrong in message and SHA256 in message
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_is_resumed_with_a_range_request(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD}, drops=1)
    dest = tmp_path / "data.bin"
    _quiet_download(f"{base}/data.bin", dest, sha256=SHA256, retries=1)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", None), ("/data.bin", f"bytes={len(PAYLOAD) // 2}-")]


def test_resume_follows_redirects(serve, tmp_path):
    base, server = serve({"/latest": "/data.bin", "/data.bin": PAYLOAD}, drops=1)
    _quiet_download(f"{base}/latest", tmp_path / "data.bin", md5=MD5, retries=1)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", f"bytes={len(PAYLOAD) // 2}-")


def test_interrupted_download_keeps_part_file_and_next_run_resumes(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD}, drops=1)
    dest = tmp_path / "data.bin"
    part = tmp_path / "data.bin.part"
    with pytest.raises(DownloadError, match="resume"):
        _quiet_download(f"{base}/data.bin", dest, sha256=SHA256, retries=0)
    assert not dest.exists()
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]

    _quiet_download(f"{base}/data.bin", dest, sha256=SHA256, retries=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", f"bytes={len(PAYLOAD) // 2}-")
    assert not part.exists()


def test_complete_part_file_answered_416_is_accepted(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD})
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    dest = _quiet_download(f"{base}/data.bin", tmp_path / "data.bin", md5=MD5)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", f"bytes={len(PAYLOAD)}-")]


def test_server_ignoring_range_restarts_from_zero(serve, tmp_path):
    base, server = serve({"/data.bin": PAYLOAD}, honour_range=False)
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # wrong bytes: must not survive
    dest = _quiet_download(f"{base}/data.bin", tmp_path / "data.bin", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", "bytes=1000-")]


def test_http_404_raises_download_error_naming_url_and_status(serve, tmp_path):
    base, _ = serve({})
    with pytest.raises(DownloadError, match=r"/missing\.tar.*404") as caught:
        _quiet_download(f"{base}/missing.tar", tmp_path / "missing.tar")
    assert not isinstance(caught.value, ChecksumError)
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_raises_download_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match="connection failed"):
        _quiet_download(f"http://127.0.0.1:{port}/x.tar", tmp_path / "x.tar", retries=1)
    assert not (tmp_path / "x.tar").exists()


def test_malformed_checksum_is_refused_before_downloading(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        dl.download("http://127.0.0.1:9/x", tmp_path / "x", sha256="abc", progress=False)


# --------------------------------------------------------------------------- archives


def _zip(path: Path, members) -> Path:
    """``members``: (name, bytes) or (ZipInfo, bytes) pairs."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _tar(path: Path, members, mode="w") -> Path:
    """``members``: TarInfo objects (regular files get ``b"data"``)."""
    with tarfile.open(path, mode) as tf:
        for info in members:
            if info.isfile():
                info.size = 4
                tf.addfile(info, io.BytesIO(b"data"))
            else:
                tf.addfile(info)
    return path


def _tarinfo(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _symlink_zipinfo(name):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info


def test_extract_zip_and_tar_gz(tmp_path):
    archive = _zip(tmp_path / "a.zip", [("top/x.txt", b"x"), ("top/sub/y.txt", b"yy"), ("top/empty/", b"")])
    files = dl.extract(archive, tmp_path / "out", progress=False)
    assert files == [tmp_path / "out/top/sub/y.txt", tmp_path / "out/top/x.txt"]
    assert (tmp_path / "out/top/sub/y.txt").read_bytes() == b"yy"
    assert (tmp_path / "out/top/empty").is_dir()

    archive = _tar(tmp_path / "b.tgz", [_tarinfo("./Task/imagesTr/liver_0.nii.gz"), _tarinfo("Task/._liver_0.nii.gz")], "w:gz")
    files = dl.extract(archive, tmp_path / "out", progress=False)  # beside the zip's content
    assert files == [tmp_path / "out/Task/imagesTr/liver_0.nii.gz"]  # the macOS ._ file is left out
    assert (tmp_path / "out/top/x.txt").exists()
    assert not any(p.name.endswith(".extracting") for p in tmp_path.iterdir())


def test_extract_never_overwrites(tmp_path):
    archive = _zip(tmp_path / "a.zip", [("top/x.txt", b"new")])
    (tmp_path / "out/top").mkdir(parents=True)
    (tmp_path / "out/top/x.txt").write_bytes(b"old")
    with pytest.raises(LiversegError, match="already contains top"):
        dl.extract(archive, tmp_path / "out", progress=False)
    assert (tmp_path / "out/top/x.txt").read_bytes() == b"old"


HOSTILE_ZIPS = {
    "parent": ("../evil.txt", "'..'"),
    "parent-backslash": ("safe\\..\\..\\evil.txt", "'..'"),
    "absolute": ("/tmp/evil.txt", "absolute"),
    "drive": ("C:/evil.txt", "absolute"),
    "symlink": (_symlink_zipinfo("link"), "symbolic link"),
}


@pytest.mark.parametrize("case", HOSTILE_ZIPS)
def test_hostile_zip_is_refused_and_nothing_is_written(tmp_path, case):
    member, problem = HOSTILE_ZIPS[case]
    data = b"/etc/passwd" if case == "symlink" else b"evil"
    archive = _zip(tmp_path / "hostile.zip", [("ok/first.txt", b"fine"), (member, data)])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match=problem) as caught:
        dl.extract(archive, work / "target", progress=False)
    assert "hostile.zip" in str(caught.value)
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    assert repr(name) in str(caught.value)
    assert list(work.iterdir()) == []  # no target, no half-extracted staging folder
    assert not (tmp_path / "evil.txt").exists()


HOSTILE_TARS = {
    "parent": (_tarinfo("data/../../evil.txt"), "'..'"),
    "absolute": (_tarinfo("/tmp/liverseg-evil.txt"), "absolute"),
    "symlink": (_tarinfo("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    "hardlink": (_tarinfo("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    "device": (_tarinfo("dev", tarfile.CHRTYPE), "device"),
    "fifo": (_tarinfo("pipe", tarfile.FIFOTYPE), "device or special"),
}


@pytest.mark.parametrize("case", HOSTILE_TARS)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, case):
    member, problem = HOSTILE_TARS[case]
    archive = _tar(tmp_path / "hostile.tar", [_tarinfo("ok/first.txt"), member])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match=problem) as caught:
        dl.extract(archive, work / "target", progress=False)
    assert "hostile.tar" in str(caught.value) and repr(member.name) in str(caught.value)
    assert list(work.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/liverseg-evil.txt").exists()


def test_unreadable_archives_raise_named_errors(tmp_path):
    with pytest.raises(MissingFileError):
        dl.extract(tmp_path / "absent.zip", tmp_path / "out", progress=False)
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(UnsupportedFormatError, match="notes.txt"):
        dl.extract(tmp_path / "notes.txt", tmp_path / "out", progress=False)
    good = _tar(tmp_path / "t.tar.gz", [_tarinfo(f"f{i}") for i in range(50)], "w:gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(CorruptFileError, match="cut.tar.gz"):
        dl.extract(tmp_path / "cut.tar.gz", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def _inner_zip(members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def _ircadb_zip(path: Path, patients=range(1, 21), slices=2, top="3Dircadb1/") -> Path:
    """The shape of IRCAD's download: ``3Dircadb1/3Dircadb1.N/{PATIENT,MASKS}_DICOM.zip``."""
    members = []
    for n in patients:
        folder = f"{top}3Dircadb1.{n}/"
        members.append((f"{folder}PATIENT_DICOM.zip", _inner_zip([(f"PATIENT_DICOM/image_{i}", b"ct") for i in range(slices)])))
        members.append((f"{folder}MASKS_DICOM.zip", _inner_zip([(f"MASKS_DICOM/liver/image_{i}", b"m") for i in range(slices)])))
        members.append((f"{folder}MESHES_VTK.zip", _inner_zip([("liver.vtk", b"mesh")])))  # no top folder
    return _zip(path, members)


def test_nested_zip_extraction_in_the_ircadb_shape(tmp_path):
    archive = _ircadb_zip(tmp_path / "3Dircadb1.zip", patients=[1, 2])
    files = dl.extract(archive, tmp_path / "data", nested=True, progress=False)
    patient = tmp_path / "data/3Dircadb1/3Dircadb1.2"
    assert sorted(p.name for p in patient.iterdir()) == ["MASKS_DICOM", "MESHES_VTK", "PATIENT_DICOM"]
    assert (patient / "PATIENT_DICOM/image_1").read_bytes() == b"ct"
    assert (patient / "MASKS_DICOM/liver/image_0").read_bytes() == b"m"
    assert (patient / "MESHES_VTK/liver.vtk").read_bytes() == b"mesh"
    assert len(files) == 2 * 5 and all(f.is_file() and f.suffix != ".zip" for f in files)


def test_hostile_inner_zip_is_refused(tmp_path):
    evil = _inner_zip([("../../../evil.txt", b"evil")])
    archive = _zip(tmp_path / "outer.zip", [("3Dircadb1.1/PATIENT_DICOM.zip", evil)])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"outer\.zip!3Dircadb1\.1/PATIENT_DICOM\.zip"):
        dl.extract(archive, work / "data", nested=True, progress=False)
    assert list(work.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_nested_zips_are_followed_only_to_a_fixed_depth(tmp_path):
    def chain(levels):
        data = b"core"
        name = "core.txt"
        for level in range(levels):
            data, name = _inner_zip([(name, data)]), f"level{level}.zip"
        return name, data

    ok = _zip(tmp_path / "ok.zip", [chain(dl.MAX_NESTING)])
    files = dl.extract(ok, tmp_path / "ok", nested=True, progress=False)
    assert [f.read_bytes() for f in files] == [b"core"]
    deep = _zip(tmp_path / "deep.zip", [chain(dl.MAX_NESTING + 1)])
    with pytest.raises(UnsafeArchiveError, match="nested more than"):
        dl.extract(deep, tmp_path / "deep", nested=True, progress=False)
    assert not (tmp_path / "deep").exists()


# --------------------------------------------------------------------------- fetch scripts


def _run_script(name, *args, cwd):
    return subprocess.run(
        [sys.executable, str(REPO / "data_download" / name), "--no-progress", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def _nifti(path: Path, value: int) -> bytes:
    image = nib.Nifti1Image(np.full((4, 4, 2), value, np.int16), np.eye(4))
    nib.save(image, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def msd_tar(tmp_path_factory) -> bytes:
    """A Task03_Liver.tar with the real layout and 131 tiny cases."""
    work = tmp_path_factory.mktemp("msd")
    scratch = work / "x.nii.gz"
    image, label = _nifti(scratch, -100), _nifti(scratch, 1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        training = []
        for case in range(131):
            add(f"Task03_Liver/imagesTr/liver_{case}.nii.gz", image)
            add(f"Task03_Liver/labelsTr/liver_{case}.nii.gz", label)
            add(f"Task03_Liver/imagesTr/._liver_{case}.nii.gz", b"\0\5\26\7 macOS resource fork")
            training.append({"image": f"./imagesTr/liver_{case}.nii.gz", "label": f"./labelsTr/liver_{case}.nii.gz"})
        add("Task03_Liver/dataset.json", json_bytes({"numTraining": 131, "training": training}))
    return buffer.getvalue()


def json_bytes(obj) -> bytes:
    import json

    return json.dumps(obj).encode()


def test_fetch_lits_end_to_end(serve, tmp_path, msd_tar):
    base, server = serve({"/Task03_Liver.tar": msd_tar})
    sha = hashlib.sha256(msd_tar).hexdigest()
    args = ("--url", f"{base}/Task03_Liver.tar", "--sha256", sha, "--dest", str(tmp_path / "data"))
    result = _run_script("fetch_lits.py", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "131 training pairs" in result.stdout and "OK: ready" in result.stdout
    task = tmp_path / "data/Task03_Liver"
    assert len(list((task / "labelsTr").iterdir())) == 131
    assert not list((task / "imagesTr").glob("._*"))

    again = _run_script("fetch_lits.py", *args, cwd=tmp_path)  # already there: no new request
    assert again.returncode == 0 and "nothing to download" in again.stdout
    assert len(server.requests) == 1


def test_fetch_lits_without_checksum_prints_sha256(serve, tmp_path, msd_tar):
    base, _ = serve({"/Task03_Liver.tar": msd_tar})
    result = _run_script("fetch_lits.py", "--url", f"{base}/Task03_Liver.tar", "--dest", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hashlib.sha256(msd_tar).hexdigest() in result.stdout


def test_fetch_lits_reports_a_bad_checksum(serve, tmp_path, msd_tar):
    base, _ = serve({"/Task03_Liver.tar": msd_tar})
    result = _run_script("fetch_lits.py", "--url", f"{base}/Task03_Liver.tar", "--md5", "0" * 32, cwd=tmp_path)
    assert result.returncode == 2
    assert "md5 mismatch" in result.stderr and "Task03_Liver.tar" in result.stderr
    assert not (tmp_path / "data/Task03_Liver").exists() and not (tmp_path / "data/Task03_Liver.tar").exists()


@pytest.fixture(scope="module")
def lits_challenge_dir(tmp_path_factory) -> Path:
    """The LiTS challenge's own layout: two batch folders of volume-N.nii / segmentation-N.nii."""
    root = tmp_path_factory.mktemp("lits")
    (root / "Training Batch 1").mkdir()
    (root / "Training Batch 2").mkdir()
    for case in range(131):
        folder = root / ("Training Batch 1" if case < 28 else "Training Batch 2")
        _nifti(folder / f"volume-{case}.nii", -100)
        _nifti(folder / f"segmentation-{case}.nii", 1)
    return root


def test_verify_lits_challenge_layout(tmp_path, lits_challenge_dir):
    result = _run_script("fetch_lits.py", "--verify", str(lits_challenge_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "131 training pairs" in result.stdout


def test_verify_lits_names_missing_and_truncated_files(tmp_path, lits_challenge_dir):
    root = tmp_path / "lits"
    for path in lits_challenge_dir.rglob("*.nii"):
        relative = path.relative_to(lits_challenge_dir)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative.name != "segmentation-77.nii":
            os.link(path, root / relative)
    truncated = root / "Training Batch 2/volume-100.nii"
    data = truncated.read_bytes()
    truncated.unlink()
    truncated.write_bytes(data[:-20])
    result = _run_script("fetch_lits.py", "--verify", str(root), cwd=tmp_path)
    assert result.returncode == 1
    assert "segmentation-77.nii: missing" in result.stdout
    assert "volume-100.nii: truncated" in result.stdout


def test_fetch_ircadb_end_to_end(serve, tmp_path):
    archive = _ircadb_zip(tmp_path / "served.zip").read_bytes()
    base, _ = serve({"/download": archive})
    result = _run_script("fetch_ircadb.py", "--url", f"{base}/download", "--dest", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 patients (expected 20)" in result.stdout and hashlib.sha256(archive).hexdigest() in result.stdout
    root = tmp_path / "data/3Dircadb1"
    assert sorted(int(p.name.split(".")[1]) for p in root.iterdir()) == list(range(1, 21))
    assert not list(root.rglob("*.zip"))


def test_fetch_ircadb_without_top_folder_and_missing_patient(serve, tmp_path):
    archive = _ircadb_zip(tmp_path / "served.zip", patients=range(1, 20), top="").read_bytes()
    base, _ = serve({"/download": archive})
    result = _run_script("fetch_ircadb.py", "--url", f"{base}/download", "--dest", "data", cwd=tmp_path)
    assert result.returncode == 1
    assert "19 patients (expected 20)" in result.stdout and "3Dircadb1.20: patient folder missing" in result.stdout
    assert (tmp_path / "data/3Dircadb1/3Dircadb1.19/PATIENT_DICOM/image_0").is_file()


def test_verify_ircadb_accepts_zipped_series_and_names_slice_mismatch(tmp_path):
    archive = _ircadb_zip(tmp_path / "3Dircadb1.zip", slices=3)
    dl.extract(archive, tmp_path / "plain", progress=False)  # outer zip only, as `unzip` does
    root = tmp_path / "plain/3Dircadb1"
    result = _run_script("fetch_ircadb.py", "--verify", str(root), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    (root / "3Dircadb1.7/MASKS_DICOM.zip").write_bytes(_inner_zip([("MASKS_DICOM/liver/image_0", b"m")]))
    result = _run_script("fetch_ircadb.py", "--verify", str(root), cwd=tmp_path)
    assert result.returncode == 1
    assert "3Dircadb1.7: 3 CT slices but 1 liver mask slices" in result.stdout
