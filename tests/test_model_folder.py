"""The one writer of model folders (:func:`liverseg.model_folder.write_model_folder`): what
it writes is what ``segment`` reads, and an incomplete set of networks writes nothing."""

import pytest

from liverseg.errors import MissingFileError
from liverseg.model_folder import MANIFEST, network_file, read_model_folder, write_model_folder

from .conftest import tiny_profile


def _networks(tmp_path, planes=("axial", "coronal"), structures=("liver", "lesion")):
    """Stand-ins for trained ``.keras`` files (the writer copies bytes, it loads nothing)."""
    networks = {}
    for plane in planes:
        for structure in structures:
            for network in ("localizer", "tuner"):
                path = tmp_path / "work" / f"{plane}-{structure}-{network}.keras"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(f"{plane} {structure} {network}".encode())
                networks[plane, structure, network] = path
    return networks


def test_the_folder_written_is_the_folder_read(tmp_path):
    settings = tiny_profile()
    networks = _networks(tmp_path)
    manifest = write_model_folder(tmp_path / "model", settings, networks, {"split": "x"})
    folder = read_model_folder(tmp_path / "model")
    assert manifest == tmp_path / "model" / MANIFEST
    assert folder.planes == ("axial", "coronal") and folder.structures == ("liver", "lesion")
    assert folder.settings == settings and folder.info == {"split": "x"}
    for (plane, structure, network), source in networks.items():
        assert folder.path(plane, structure, network).read_bytes() == source.read_bytes()


def test_a_plane_without_one_of_its_networks_writes_nothing(tmp_path):
    networks = _networks(tmp_path)
    del networks["coronal", "lesion", "tuner"]
    with pytest.raises(ValueError, match=network_file("coronal", "lesion", "tuner")):
        write_model_folder(tmp_path / "model", tiny_profile(), networks)
    assert not (tmp_path / "model").exists()


def test_a_network_file_that_is_gone_is_named_and_no_manifest_is_written(tmp_path):
    networks = _networks(tmp_path, planes=("axial",))
    networks["axial", "liver", "tuner"].unlink()
    with pytest.raises(MissingFileError, match="axial-liver-tuner.keras"):
        write_model_folder(tmp_path / "model", tiny_profile(), networks)
    assert not (tmp_path / "model" / MANIFEST).exists()


def test_a_network_is_loaded_once_until_its_file_is_written_again(tmp_path):
    import keras

    from liverseg.errors import CorruptFileError
    from liverseg.model_folder import load_network

    def saved(units, path):
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)]).save(path)
        return path

    path = saved(2, tmp_path / "net.keras")
    first = load_network(path)
    assert load_network(str(path)) is first  # one object, with whatever it has compiled
    assert load_network(tmp_path / "." / "net.keras") is first
    saved(5, path)  # the file written again: the new network, not the kept one
    second = load_network(path)
    assert second is not first and second.outputs[0].shape[-1] == 5
    load_network.cache_clear()
    assert load_network(path) is not second
    with pytest.raises(MissingFileError, match="gone.keras"):
        load_network(tmp_path / "gone.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="bad.keras"):
        load_network(tmp_path / "bad.keras")
