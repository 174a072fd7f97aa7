"""Reading and writing CT volumes in one array orientation.

Every reader returns a :class:`Volume` whose ``array`` is ``(z, y, x)``: axis 0 runs
inferior→superior and each axial slice ``array[k]`` is in radiological view (patient
right on the image's left, anterior at the top). In nibabel's axis codes that is
``("S", "P", "L")``; it is also the array order SimpleITK returns for an LPS image.

Each format reader yields the array in the file's own index order together with its
voxel→RAS+ affine; one function (:func:`_to_canonical`) reorients that pair, and the
:class:`Volume` remembers the source geometry so :func:`write_volume` can write a
result (e.g. a label) that overlays the source exactly in any viewer.

Supported inputs: NIfTI (``.nii``, ``.nii.gz``), DICOM series folders (files with or
without extension), NRRD (``.nrrd``, ``.nhdr``) and ANALYZE 7.5 (``.hdr``/``.img``).

:func:`smallest_exact_dtype` picks the storage type of an output (NIfTI here, the TIFF
slices of :mod:`liverseg.datasets.slice_store`).
"""

from liverseg.io.dtypes import smallest_exact_dtype
from liverseg.io.readers import read_label, read_volume
from liverseg.io.volume import CANONICAL_AXCODES, Volume
from liverseg.io.writer import write_volume

__all__ = [
    "CANONICAL_AXCODES",
    "Volume",
    "read_label",
    "read_volume",
    "smallest_exact_dtype",
    "write_volume",
]
