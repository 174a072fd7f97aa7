"""File-name suffixes of the formats liverseg reads and writes."""

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ANALYZE_SUFFIXES = (".hdr", ".img", ".img.gz", ".hdr.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
